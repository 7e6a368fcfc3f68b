"""The AWS edge: every call to AWS, answers decoded, errors translated, its clock, the budget."""
