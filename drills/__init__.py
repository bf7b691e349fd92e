"""Pipeline orchestration: the demo, the fault drills, and the tooling tests and benchmarks share.

``python -m drills demo|chaos|cluster`` (``cityfleet-drills``) runs the same commands the README
documents (devices, bridge, streaming job, reports) as child processes of the one runner,
``stack.process.Process``, and checks the result with the one audit core, ``spark.audit``.
Nothing here ships with a component: ``stack/`` installs and runs the servers, ``drills/``
drives the pipeline through them.

* ``demo``: ``make demo``, one scenario from devices to a report (``drills.demo``);
* ``chaos``: ``make chaos``, every component killed or restarted under load on private
  servers (``drills.chaos``, ``drills.servers``, ``drills.faults``);
* ``cluster``: ``make chaos TOPOLOGY=cluster``, brokers and workers of the cluster topology
  killed under load (``drills.cluster``);
* ``children``, ``flow``, ``clock``, ``watch``: the pipeline's child processes, the per-stage
  counts, the simulated clock and the demo's live table;
* ``harness``: publish, run the bridge, read Kafka back, for the bridge's tests and benchmarks.
"""
