"""The kubelet DRA plugin API v1 (gRPC service ``k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin``,
advertised to the kubelet as ``v1.DRAPlugin``): api.proto and its generated stubs."""
