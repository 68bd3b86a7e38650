"""`bin/NAME daemon`'s own patience: it outwaits the node's boot deadline."""
from __future__ import annotations

import pytest

from twelve.runtime.process import daemon


@pytest.mark.parametrize("value, waited", [(None, 120.0), ("60", 120.0), ("300", 330.0),
                                           ("abc", 120.0), ("nan", 120.0), ("1e300", 120.0)])
def test_daemon_waits_beyond_a_longer_boot_deadline(value, waited):
    environ = {} if value is None else {"TWELVE_BOOT_TIMEOUT": value}
    assert daemon.ready_timeout(environ) == waited
