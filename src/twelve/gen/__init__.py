"""Generators (mix's ``release.init``, Phoenix's ``phx.gen.release``, and the systemd and Docker
files around them): ``init``, ``release``, ``systemd``, ``docker``, each computing the files it
writes from the ``Project``; ``files`` writes them without overwriting; ``commands`` adds them to
the ``twelve`` CLI. Templates live in ``templates/`` (package data)."""
