"""Test hosts for `twelve gen.ansible`: network namespaces with their own sshd, and a client
load run inside one (tests/integration/test_fleet.py)."""
