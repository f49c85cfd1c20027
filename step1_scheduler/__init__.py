"""Step 1 of the tutorial: a pymesos scheduler that runs the example job as command tasks.

    python -m step1_scheduler --master 127.0.0.1:5050

`scheduler.py` holds the framework (the offers and the status updates), `sandbox.py` reads each
task's output back from its agent, and `__main__.py` starts and stops the framework.
"""
