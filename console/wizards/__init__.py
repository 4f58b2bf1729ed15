"""Guided flows built on the plugin contract: phased rollouts, the bring-up scorecard,
failover drills and on-call runbooks. They use plugins' actions (through the
ActionRunner) and checks (over the Store), never a plugin's code directly."""
