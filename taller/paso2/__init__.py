# Generated from step2_executor/__init__.py by `python -m taller generate`: the workshop's
# skeleton of step 2. Write the functions that raise NotImplementedError, and check
# them with `make ejercicio PASO=2`.
# fingerprint: 29e25a29bdb37d36
"""Step 2 of the tutorial: the same job, now run by a custom executor of our own.

    python -m taller.paso2 --master 127.0.0.1:5050

`scheduler.py` holds the framework (offers, status updates and the messages from executors),
`executor.py` is the program that Mesos starts once per agent to run our tasks on threads,
`messages.py` is what travels between the two, `archive.py` packs the executor's code for the
agents to fetch, and `__main__.py` starts and stops the framework.
"""
