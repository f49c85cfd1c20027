# Generated from step1_scheduler/__init__.py by `python -m taller generate`: the workshop's
# skeleton of step 1. Write the functions that raise NotImplementedError, and check
# them with `make ejercicio PASO=1`.
# fingerprint: 300284560b7cb294
"""Step 1 of the tutorial: a pymesos scheduler that runs the example job as command tasks.

    python -m taller.paso1 --master 127.0.0.1:5050

`scheduler.py` holds the framework (the offers and the status updates), `sandbox.py` reads each
task's output back from its agent, and `__main__.py` starts and stops the framework.
"""
