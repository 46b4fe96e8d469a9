"""The models: ONNX members and their front-ends, the ensemble's blend, the CPU budget guard, stage costs, model
manifests and translated names. Imports audio and the layers below it.
"""
