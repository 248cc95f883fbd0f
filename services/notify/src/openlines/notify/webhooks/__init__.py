"""Signed outgoing webhooks (DESIGN §2, notify): subscriptions, a durable delivery queue per
subscription in Postgres, and the dispatcher that POSTs each event to its receivers.

- `domain`: what is delivered where, what an answer means, when to try again (pure);
- `addresses`: which receivers may be called at all (SSRF: every resolved address checked);
- `store`: the tables; `fanout`: the consumer that records deliveries; `dispatcher`: the loop
  that claims and sends them; `api`: `/api/v1/webhooks...`.
"""
