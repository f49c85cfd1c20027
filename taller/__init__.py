"""The workshop: exercises generated from the steps, and a checker that says what is wrong.

    make ejercicio PASO=1                  # check taller/paso1, your skeleton of step 1
    make exercise STEP=1                   # the same, in English
    python -m taller check 1 --package step1_scheduler    # any package: the solution, say
    python -m taller generate [--check]    # write the skeletons from the steps (or check them)

`taller/pasoN/` is step N with the regions marked `# EXERCISE: name` in its code replaced by
stubs: a Spanish docstring that says what to write, and `raise NotImplementedError`. The checks
(`taller/checksN.py`) are the step's behaviours, from the smallest up to the whole job on a
local cluster; `catalog.py` holds every text, in Spanish and English.
"""
