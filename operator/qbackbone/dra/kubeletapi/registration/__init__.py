"""The kubelet plugin registration API v1 (gRPC service ``pluginregistration.Registration``):
api.proto and its generated stubs."""
