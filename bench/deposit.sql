-- The database transaction of one deposit (escrow.services.escrow_deposit),
-- statement for statement as bench/capture_deposit_sql.py captures it from a
-- real request: same tables, same indexes, same locks, same order, same round
-- trips. Run by bench/run.sh as
--   pgbench -n -M prepared -c16 -j2 -T <s> -f bench/deposit.sql \
--           -D client=<account id> -D eid_lo=<first escrow id> -D eid_hi=<last>
-- Differences, all in the app's favour or neutral:
--   * values Python computes are computed here in SQL: timestamps are now(),
--     amount_funded is the locked row's value + 1.00 (read with \gset);
--   * the audit row is one INSERT (no lock, no read of the chain: the sealing
--     job chains rows later, off the request path). Its JSON data and
--     request_id are fixed strings of the app's shape.
--   * -M prepared: statements are parsed/planned once per connection, as the
--     app's are (server-side binding, psycopg's prepare_threshold).
-- Idempotency keys are unique: client id + a 62-bit random number. As in the
-- app, the key is claimed in autocommit before the transaction, the claim's
-- INSERT taking the key's liveness lock (a session advisory lock) for the row
-- it inserts, and its answer (the response body the app stores) is written
-- inside the transaction, with the deposit (kobatela.core.idempotency: one
-- unit with the effect), the answer's UPDATE releasing the lock; the app's
-- savepoint (the service joins the request's unit) is here too.
\set eid random(:eid_lo, :eid_hi)
\set r random(1, 4611686018427387903)
INSERT INTO core_idempotencykey (api_key_id, key, fingerprint, status, response_status, response_body, created_at, completed_at) VALUES ((SELECT min(id) FROM accounts_apikey), 'pgb-' || :client::text || '-' || :r::text, '1654b98275ec49c65235cb4f9b21f06f42a39bec64409ec6472c288d1c967f12', 'IN_PROGRESS', NULL, NULL, now(), NULL) ON CONFLICT (api_key_id, key) DO NOTHING RETURNING id AS idem_id, pg_try_advisory_lock(:r) AS held \gset
BEGIN;
SAVEPOINT s1;
SELECT id, client_id, provider_id, amount_total, amount_funded, amount_released, amount_refunded, currency, status, deadline_at, release_conditions, delivered_at, deadline_handled_at, created_at, updated_at FROM escrow_escrowagreement WHERE (client_id = :client AND id = :eid) LIMIT 21 FOR UPDATE \gset e_
INSERT INTO escrow_escrowdeposit (escrow_id, account_id, amount, idempotency_key, source, psp_ref, created_at) VALUES (:eid, :client, 1.00, 'pgb-' || :client_id::text || '-' || :r::text, 'api', '', now()) RETURNING id AS dep_id \gset
INSERT INTO payments_ledgerentry (movement, kind, account, amount, currency, created_at) VALUES ('deposit:' || :dep_id::text, 'deposit', 'psp:' || 'clearing', -1.00, 'USD', now()), ('deposit:' || :dep_id::text, 'deposit', 'escrow:' || :eid::text, 1.00, 'USD', now()) RETURNING id;
INSERT INTO escrow_escrowevent (escrow_id, kind, data, actor, created_at) VALUES (:eid, 'deposit', '{"amount": "1.00", "source": "api"}'::jsonb, 'apikey:' || '1', now()) RETURNING id;
UPDATE escrow_escrowagreement SET amount_funded = :e_amount_funded::numeric + 1.00, updated_at = now() WHERE id = :eid;
SELECT id, escrow_id, idx, label, amount, status, proof_type, proof_requirements, geofence_lat, geofence_lng, geofence_radius_m, approved_at, paid_at FROM escrow_milestone WHERE escrow_id IN (:eid) ORDER BY idx ASC;
INSERT INTO audit_auditlog (created_at, actor, action, entity_type, entity_id, data, request_id) VALUES (now(), 'apikey:' || '1', 'escrow.deposit', 'escrow.escrowagreement', :eid, ('{"amount": "1.00", "deposit_id": ' || :dep_id::text || ', "source": "api", "status": "DRAFT"}')::jsonb, 'fc4c65e6ac784660ad108b65e29a290d') RETURNING id;
RELEASE SAVEPOINT s1;
UPDATE core_idempotencykey SET status = 'COMPLETED', response_status = 200, response_body = '{"id": 1, "client_id": 1, "provider_id": 2, "amount_total": "1000000000.00", "amount_funded": "3.00", "amount_released": "0.00", "amount_refunded": "0.00", "currency": "USD", "status": "DRAFT", "deadline_at": "2027-12-04T22:16:05.123456Z", "release_conditions": {}, "milestones": [{"id": 1, "idx": 1, "label": "Delivery", "amount": "1000000000.00", "status": "WAITING", "proof_type": "PHOTO", "proof_requirements": {}, "geofence": null}], "created_at": "2026-12-04T22:16:05.123456Z", "updated_at": "2026-12-04T22:16:09.908987Z"}'::jsonb, completed_at = now() WHERE id = :idem_id RETURNING pg_advisory_unlock(:r);
COMMIT;
