"""The node as an OS process: its lifecycle (``node``), detaching (``daemon``) and its log
writer (``logs``), the listening socket (``listen``), how it drains (``lifecycle``), what it
tells its supervisor (``notify``), twelve's own pre-fork supervisor (``prefork``), and facts
about other processes by pid (``pids``). Standard library only."""
