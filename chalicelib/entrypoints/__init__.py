"""The entry layer: API Gateway and Lambda events in, use cases called, the contract's answers out.

``rest`` (REST routes and webhook intake), ``ws`` (the WebSocket API: authorizer, frames, router),
``events`` (stream, schedule, delivery queue, SIP media), ``validation`` (the bounded decoder and
Struct validation) and ``errors`` (the one exception-to-error mapper). ``app.py`` wires routes to them.
"""
