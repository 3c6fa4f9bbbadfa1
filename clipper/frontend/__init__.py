"""The query surfaces, side by side over the data plane: Clipper's REST API
(`clipper_api`) and the Open Inference Protocol over REST and gRPC (`oip`)."""
