"""`r2local serve`: the engine behind an OpenAI-compatible HTTP endpoint on loopback.

Editors, scripts and chat front-ends that speak the OpenAI chat API get
r2local's routing, gates and ledger, with the models kept warm in one process.
Starlette and uvicorn are imported only here (the ``serve`` extra).
"""
