"""The parts of the local API Gateway; ``devstack/gateway.py`` puts them together into one aiohttp app.

One module per part, each small enough to read in one sitting:

* ``config``: the gateway's settings, grouped by what they describe (handler names, the stage, API
  Gateway's limits, the store-free calls), each defaulting to what API Gateway does.
* ``lambdas``: running a Chalice handler the way Lambda would (thread pools, the context object) and
  the ids, times and header views API Gateway puts in its events.
* ``authorizer``: the REQUEST authorizer's invocation and the check of the policy it returns.
* ``frames``: the per-frame size limit (32 KB) that aiohttp does not have.
* ``connections``: the open sockets, each with its bounded send buffer and writer (backpressure).
* ``websocket``: one socket's lifecycle, ``$connect`` → ``$default`` per message → one ``$disconnect``.
* ``management``: the ``@connections`` API the app posts through.
* ``rest``: everything else, through Chalice's ``LocalGateway``, with API Gateway's own error answers.
* ``server``: listening sockets and aiohttp's connection handler (431/400 without echoing a header).
"""
