"""The KFP authoring wing: the tracked-component factory, the adapter onto kfp's generated
command, compiling, IR checks, loading pipelines by reference.
"""
