"""Static assets at build time: ``twelve digest`` and ``twelve digest.clean`` (Phoenix's
phx.digest and phx.digest.clean). The run-time half — ``static_path`` and the serving glue —
is ``twelve.runtime.static``, which ships in every release."""
