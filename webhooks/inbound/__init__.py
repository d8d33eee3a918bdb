"""Inbound provider webhooks, once their signature is verified: decode, parse, store, process, reprocess.

How one delivery goes (STYLE habit 6, dj-stripe's ``WebhookEventTrigger``)::

    view: signing.verify(raw body)           → 400/401/503, nothing stored
          decode.decode_body                  → 400, nothing stored
          psp.parse_psp_event / stripe.parse_stripe_event
                                              → 400, nothing stored (schemas: what each action needs)
          process.inbound_event_receive(parsed)
              inbound_event_store             → its own short transaction; unique (provider, event id)
              already PROCESSED?              → {"duplicate": true}, nothing changes
              inbound_event_process           → HANDLERS[action](data) calls the money services
              PROCESSED (result) / FAILED (error code and message)

A failure of the *business* kind (a :class:`DomainError`: unknown payment,
amount mismatch, a transition the payment cannot make…) is recorded on the
stored event and answered **200**: the provider re-sending the same event
would fail the same way for days, so support reprocesses it once the cause is
fixed (admin action or ``manage.py reprocess_webhooks``). A crash (a bug, the
database gone) is not caught: the view answers 5xx, the row stays RECEIVED
and the provider's retry processes it again.

Processing is idempotent, so a redelivery, a reprocess or two concurrent
deliveries of one event cannot move money twice: deposits carry the key
``psp:<psp_ref>`` (unique per account), and the payment services return
early when the payment is already in the reported state.

The event schemas (``schemas``) are DRF serializers. They live here rather
than in ``api.py`` because a stored event is validated again each time it is
(re)processed, by the admin action and the management command too, which have
no view.
"""

