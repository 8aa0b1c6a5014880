"""What runs a task: the in-task executor (kfp's, wrapped in tracking), its status records, and
the local processes around tasks (the supervisor that forks them, the driver that runs kfp.local).
"""
