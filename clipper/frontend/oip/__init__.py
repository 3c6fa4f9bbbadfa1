"""The Open Inference Protocol (KServe V2): REST with binary tensors, and gRPC.

`service.InferenceService` is the transport-agnostic core (model resolution, metadata,
inference through the dataplane); `rest` and `grpc_server` are its two transports.
"""
