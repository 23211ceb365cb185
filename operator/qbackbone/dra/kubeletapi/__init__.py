"""The kubelet's DRA plugin API v1 (``drav1``) and plugin registration API v1 (``registration``):
api.proto files from k8s.io/kubelet and their generated stubs (``hack/gen-dra.sh``; do not edit
``api_pb2*`` by hand)."""
