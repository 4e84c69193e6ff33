"""Writes a minimal OCI image layout (one tiny layer) into DIR, tagged `latest`, for the
registry end-to-end test to push with skopeo. Usage: python3 make_oci_layout.py DIR"""
import hashlib
import io
import json
import os
import sys
import tarfile

root = sys.argv[1]
os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)


def blob(data, media_type):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(root, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}


layer_tar = io.BytesIO()
with tarfile.open(fileobj=layer_tar, mode="w") as tar:
    content = b"hello from k8s-ecrupdater's test\n"
    info = tarfile.TarInfo("hello.txt")
    info.size = len(content)
    tar.addfile(info, io.BytesIO(content))
layer = layer_tar.getvalue()
layer_desc = blob(layer, "application/vnd.oci.image.layer.v1.tar")
config = json.dumps({
    "architecture": "amd64",
    "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
}).encode()
config_desc = blob(config, "application/vnd.oci.image.config.v1+json")
manifest = json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": config_desc,
    "layers": [layer_desc],
}).encode()
manifest_desc = blob(manifest, "application/vnd.oci.image.manifest.v1+json")
manifest_desc["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
with open(os.path.join(root, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [manifest_desc]}, f)
with open(os.path.join(root, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
