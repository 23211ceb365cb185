"""The kubelet device-plugin API v1beta1: api.proto from k8s.io/kubelet and its generated stubs
(``hack/gen-deviceplugin.sh``; do not edit ``api_pb2*`` by hand)."""
