"""Writing fixtures in the public set's format (gfl-fixture/1, tests/GflTrainer.Tests/Fixtures/gfl/README.md): float32
values as the shortest decimal that reads back to the same float32, each tensor's data on one line."""
import json
import os
import re
import struct

import torch


def shortest(x):
    """The shortest decimal that reads back to the same float32."""
    for digits in range(6, 12):
        s = f"{x:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(s)))[0] == struct.unpack("f", struct.pack("f", x))[0]:
            return float(s)
    return float(x)


def tensor(t):
    t = t.detach().contiguous()
    if t.dtype == torch.int64:
        return {"shape": list(t.shape), "dtype": "int64", "data": t.flatten().tolist()}
    if t.dtype == torch.bool:
        return {"shape": list(t.shape), "dtype": "bool", "data": [int(v) for v in t.flatten().tolist()]}
    return {"shape": list(t.shape), "dtype": "float32", "data": [shortest(v) for v in t.float().flatten().tolist()]}


def write(folder, kind, name, description, reference, params, inputs, expected):
    doc = {"format": "gfl-fixture/1", "kind": kind, "name": name, "description": description, "reference": reference,
           "params": params, "inputs": inputs, "expected": expected}
    os.makedirs(folder, exist_ok=True)
    text = json.dumps(doc, indent=2)
    text = re.sub(r'"data": \[([^\]]*)\]', lambda m: '"data": [' + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    text = re.sub(r'\{\s*"shape": \[([^\]]*)\],\s*"dtype": "(\w+)",\s*"data"',
                  lambda m: '{"shape": [' + ", ".join(x.strip() for x in m.group(1).split(",") if x.strip()) + '], "dtype": "'
                  + m.group(2) + '", "data"', text)
    with open(os.path.join(folder, name + ".json"), "w") as f:
        f.write(text + "\n")
