"""Inbound provider webhooks, once their signature is verified: decode, store, parse, process, reprocess.

How one delivery goes (STYLE habit 6, dj-stripe's ``WebhookEventTrigger``)::

    view: signing.verify(raw body)           → 400/401/503, nothing stored
          decode.decode_body                  → 400, nothing stored (not JSON, not an object, NUL, too deep)
          psp.psp_envelope / stripe.stripe_envelope
                                              → 400, nothing stored: no usable event id;
                                                generic PSP only: a type outside its contract
          process.inbound_event_receive(envelope)
              inbound_event_store             → its own short transaction; unique (provider, event id)
              already PROCESSED or IGNORED?   → {"duplicate": true}, nothing changes
              inbound_event_process           → parse_stored: the stored body, parsed again every time
                                                (psp.parse_psp_event / stripe.parse_stripe_event,
                                                schemas: what each action needs),
                                                then HANDLERS[action](data) calls the money services
              PROCESSED (result) / IGNORED (not ours, reason) / FAILED (error code and message)

Signed ⇒ stored and answered **200**, however unusable the event: the
provider re-sending the same bytes would fail the same way for days (Stripe
retries for three), so the event waits, stored with its reason, for support
to reprocess it once the cause is fixed (admin action or ``manage.py
reprocess_webhooks``). Not ours (Stripe: no Kobatela metadata, a type we do
not act on) is IGNORED. Looks like ours but the event itself is unusable
(data failing its schema, no such escrow, payment or funding session) is
FAILED with an Alert; a *business* refusal of a usable event (a
:class:`DomainError` such as an amount mismatch or a transition the payment
cannot make) is FAILED too. The metric ``kobatela_webhooks_total`` says
which (``process.WEBHOOKS``). A crash (a bug, the database gone) is not
caught: the view answers 5xx, the row stays RECEIVED and the provider's
retry processes it again.

Processing is idempotent, so a redelivery, a reprocess or two concurrent
deliveries of one event cannot move money twice: deposits carry the key
``psp:<psp_ref>`` (unique per account), and the payment services return
early when the payment is already in the reported state.

The event schemas (``schemas``) are DRF serializers. They live here rather
than in ``api.py`` because a stored event is validated again each time it is
(re)processed, by the admin action and the management command too, which have
no view.
"""

