"""ReactorLagMonitor: a timer that fires late is seen in gamed_reactor_lag_seconds."""

from twisted.internet import task

from gamed.core.lag import ReactorLagMonitor
from gamed.core.metrics import Metrics


def bucket(metrics, upper):
    text = metrics.render().decode()
    for line in text.splitlines():
        if line.startswith("gamed_reactor_lag_seconds_bucket") and 'le="%s"' % upper in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(text)


def test_on_time_and_late_samples_land_in_their_buckets():
    clock, metrics = task.Clock(), Metrics()
    monitor = ReactorLagMonitor(clock, metrics, interval=0.05)
    monitor.startService()
    clock.advance(0.05)  # on time
    clock.advance(0.35)  # the reactor was held for 0.3 s past the due time
    assert bucket(metrics, "0.001") == 1
    assert bucket(metrics, "0.25") == 1 and bucket(metrics, "0.5") == 2
    monitor.stopService()
    assert not clock.getDelayedCalls()
