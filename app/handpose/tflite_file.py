"""A TFLite file's structure checked before an interpreter reads it (no TensorFlow).

The interpreter trusts its input: a truncated or damaged `.tflite` can crash the process with a
segmentation fault instead of raising (seen: a truncated file whose sha256 in the metadata had
been recomputed). `check_tflite_file` reads the FlatBuffer (schema: tensorflow/lite/schema/
schema.fbs, root table `Model`) with every offset bounds-checked: the "TFL3" identifier; every
table of the model, its operator codes, subgraphs, tensors (shapes, names, quantization),
operators (inputs, outputs, options) and buffers (inline byte vectors, and the offset/size pairs
of models over 2 GB) with its vtable lying inside the file; every vector and string inside the
file. It raises `ModelFileError` naming the file and what is wrong; it does not check what the
operators compute (the interpreter does, at allocation).
"""

from __future__ import annotations

import struct
from pathlib import Path

from handpose.errors import ModelFileError

IDENTIFIER = b"TFL3"
#: the smallest file that can hold a header, a root table and a vtable
MIN_SIZE = 32
#: field ids of schema.fbs tables: Model
MODEL_CODES, MODEL_SUBGRAPHS, MODEL_DESCRIPTION, MODEL_BUFFERS = 1, 2, 3, 4
MODEL_METADATA_BUFFER, MODEL_METADATA, MODEL_SIGNATURES = 5, 6, 7
#: SubGraph: tensors, inputs, outputs, operators, name
SUBGRAPH_FIELDS = {"tables": (0, 3), "ints": (1, 2), "strings": (4,)}
#: Tensor: shape 0, name 3, quantization 4 (a table), shape_signature 7
TENSOR_FIELDS = {"ints": (0, 7), "strings": (3,)}
TENSOR_QUANTIZATION = 4
#: QuantizationParameters: min, max, scale (floats), zero_point (int64)
QUANT_VECTORS = ((0, 4), (1, 4), (2, 4), (3, 8))
#: Operator: inputs 1, outputs 2, builtin_options 4 (a table), custom_options 5, intermediates 8
OPERATOR_FIELDS = {"ints": (1, 2, 8), "bytes": (5,)}
OPERATOR_OPTIONS = 4
#: Buffer table field ids: data 0, offset 1, size 2
BUFFER_DATA, BUFFER_OFFSET, BUFFER_SIZE = 0, 1, 2


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.path = path

    def fail(self, what: str) -> ModelFileError:
        return ModelFileError(
            f"{self.path}: not a complete TFLite model ({what}; {len(self.data)} bytes): "
            "truncated or damaged; copy the folder written by `handpose convert` again"
        )

    def u(self, fmt: str, pos: int) -> int:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.data):
            raise self.fail(f"offset {pos} outside the file")
        return int(struct.unpack_from(fmt, self.data, pos)[0])

    def field(self, table: int, index: int) -> int | None:
        """Absolute position of field `index` of the table at `table`, or None if absent; the
        table (its vtable's declared size) must lie inside the file."""
        vtable = table - self.u("<i", table)
        vsize = self.u("<H", vtable)
        tsize = self.u("<H", vtable + 2)
        if vsize < 4 or vsize % 2 or vtable + vsize > len(self.data):
            raise self.fail(f"a vtable of {vsize} bytes")
        if table + tsize > len(self.data):
            raise self.fail("a table running past the end")
        slot = 4 + 2 * index
        if slot + 2 > vsize:
            return None
        offset = self.u("<H", vtable + slot)
        if offset and offset >= tsize:
            raise self.fail("a field outside its table")
        return table + offset if offset else None

    def tables(self, table: int, index: int) -> list[int]:
        """Positions of the tables in the vector field `index` (none when absent)."""
        pos = self.field(table, index)
        if pos is None:
            return []
        first, length = self.vector(pos, 4)
        return [self.indirect(first + 4 * i) for i in range(length)]

    def check(self, table: int, fields: dict[str, tuple[int, ...]]) -> None:
        """Vectors of 4-byte ints, strings and byte vectors of a table lie inside the file."""
        sizes = {"ints": 4, "strings": 1, "bytes": 1}
        for kind, indices in fields.items():
            for index in indices:
                pos = self.field(table, index)
                if pos is not None:
                    self.vector(pos, sizes[kind])

    def indirect(self, pos: int) -> int:
        return pos + self.u("<I", pos)

    def vector(self, pos: int, element: int) -> tuple[int, int]:
        """(first element position, length) of the vector referenced at `pos`."""
        start = self.indirect(pos)
        length = self.u("<I", start)
        end = start + 4 + length * element
        if end > len(self.data):
            raise self.fail(f"a vector of {length} elements running past the end")
        return start + 4, length


def check_tflite_file(path: str | Path) -> None:
    """Raise ModelFileError if `path` is not a structurally complete TFLite FlatBuffer."""
    path = Path(path)
    data = path.read_bytes()
    reader = _Reader(data, path)
    if len(data) < MIN_SIZE:
        raise reader.fail("too small")
    if data[4:8] != IDENTIFIER:
        raise reader.fail(f"file identifier {data[4:8]!r}, not {IDENTIFIER!r}")
    root = reader.indirect(0)
    for code in reader.tables(root, MODEL_CODES):
        reader.field(code, 0)
    reader.check(root, {"strings": (MODEL_DESCRIPTION,), "ints": (MODEL_METADATA_BUFFER,)})
    for table in reader.tables(root, MODEL_METADATA) + reader.tables(root, MODEL_SIGNATURES):
        reader.field(table, 0)
    subgraphs = reader.tables(root, MODEL_SUBGRAPHS)
    if not subgraphs:
        raise reader.fail("no subgraphs")
    for subgraph in subgraphs:
        reader.check(subgraph, {k: v for k, v in SUBGRAPH_FIELDS.items() if k != "tables"})
        for tensor in reader.tables(subgraph, 0):
            reader.check(tensor, TENSOR_FIELDS)
            quant = reader.field(tensor, TENSOR_QUANTIZATION)
            if quant is not None:
                params = reader.indirect(quant)
                for index, size in QUANT_VECTORS:
                    pos = reader.field(params, index)
                    if pos is not None:
                        reader.vector(pos, size)
        for operator in reader.tables(subgraph, 3):
            reader.check(operator, OPERATOR_FIELDS)
            options = reader.field(operator, OPERATOR_OPTIONS)
            if options is not None:
                reader.field(reader.indirect(options), 0)
    for i, table in enumerate(reader.tables(root, MODEL_BUFFERS)):
        data_field = reader.field(table, BUFFER_DATA)
        if data_field is not None:
            reader.vector(data_field, 1)
        offset_field = reader.field(table, BUFFER_OFFSET)
        size_field = reader.field(table, BUFFER_SIZE)
        if offset_field is not None and size_field is not None:
            offset, size = reader.u("<Q", offset_field), reader.u("<Q", size_field)
            if offset > 1 and offset + size > len(data):
                raise reader.fail(f"buffer {i} at bytes {offset}..{offset + size}")
