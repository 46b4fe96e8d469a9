"""The models: ONNX members and their front-ends, the ONNX Runtime sessions every model runs in, the ensemble's
blend, the CPU budget guard, stage costs, model manifests and translated names. Imports audio and the layers below it.
"""
