# Generated from step3_failover/__init__.py by `python -m taller generate`: the workshop's
# skeleton of step 3. Write the functions that raise NotImplementedError, and check
# them with `make ejercicio PASO=3`.
# fingerprint: 239b521262314b47
"""Step 3 of the tutorial: the same job, now fault tolerant.

    python -m taller.paso3 --master 127.0.0.1:5050 --state build/step3-state

`checkpoint.py` holds what a scheduler must not lose (the framework ID, every task launched,
every chunk's result) in a directory or in ZooKeeper, and elects the one scheduler that leads;
`scheduler.py` is step 2's framework, able to recover from that checkpoint, reconcile its tasks
with the master and launch again what was lost; `executor.py` and `messages.py` are step 2's,
unchanged; `archive.py` is step 2's too, served on a fixed port; `__main__.py` waits for the
leadership, then starts and ends the framework.
"""
