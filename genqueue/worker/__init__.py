from genqueue.worker.worker import Worker

__all__ = ["Worker"]
