"""A study: its config and schema, its plan of jobs, the replicas' random inputs, and the job
bodies the workflow's rules run.
"""
