"""Webhook delivery (docs/webhooks.md): a task or batch submitted with ``webhook: {url,
events}`` gets each event it asked for POSTed to its URL, signed as Standard Webhooks do.

    records.py   the data: WebhookTarget (on Task and Batch), WebhookDelivery and its attempts
    targets.py   which URLs may be called: http(s), no private addresses unless allowed
    envelope.py  the body of a delivery and its stable webhook-id
    pump.py      WebhookPump: follows Store.watch from a cursor, makes delivery rows
    sender.py    WebhookSender: takes due rows with a hold, POSTs them, records each attempt
    schedule.py  what an attempt's answer means: delivered, retried when, or failed
    service.py   starts both inside an API process

Deliberately light: ``genqueue.models`` imports ``records`` from here, so this package's
``__init__`` imports nothing.
"""
