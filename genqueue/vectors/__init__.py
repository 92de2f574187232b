"""Similarity search over ``feature.extract`` vectors: one FAISS index per collection.

    index.py     CollectionIndex: the FAISS index, its item records, atomic save and load
    service.py   Collections: definitions on disk, load-or-rebuild from the store, following
                 ``task.succeeded`` events, the query path (embed, then search)

Who holds what: every API process holds the indexes it has been asked about, in memory, and
computes query embeddings itself (the ONNX model loads on the first search), so a search is
one ONNX run and one FAISS scan, with no queue in between. Workers only compute vectors; the
store keeps them as task results, and each API process adds them to its indexes as it sees
their ``task.succeeded`` events, so every instance converges on the same index.
"""

from genqueue.vectors.index import CollectionIndex, Hit
from genqueue.vectors.service import CollectionInfo, CollectionNotFoundError, Collections

__all__ = ["CollectionIndex", "CollectionInfo", "CollectionNotFoundError", "Collections", "Hit"]
