"""The control channel: the authenticated Unix socket of a running node (``channel``), the
node's side of a connection (``session``), and the client side: ``pid``, ``stop``, ``restart``,
``rpc`` (``remote``) and the interactive console (``console``). Standard library only."""
