"""Tasks: MBPP and HumanEval-format data sets, splits, prompt templates, completion clean-up."""
