"""Quick, bounded versions of the experiments that once broke localmesos (disk faults, stalled
subscribers, floods, hostile input, churn); their long versions with figures are `make soak`.
README.md here records how each test failed on the code before its fix."""
