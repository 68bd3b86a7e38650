"""Configuration at boot: the config store and the evaluation of config files (``store``), and
the typed readers of the environment with the error they report (``env``). ``import twelve``
re-exports the API that config files and app code use. Standard library only."""
