/**
 * A model's inputs and outputs (names, element types, shapes), read on the main thread without
 * creating a session there: from the ONNX file's bytes (a minimal protobuf reader that walks
 * `ModelProto.graph` and skips every initializer by its length), or from a loaded session's
 * `inputMetadata` / `outputMetadata` (onnxruntime 1.22+).
 */

/** One input or output of a model. */
export interface OnnxValueInfo {
  readonly name: string;
  /** The element type as onnxruntime names it (`"float32"`, `"int64"`, ...), or `"unknown"`. */
  readonly type: string;
  /** Each dimension: a size, a symbolic name (a free dimension such as `"N"`), or `null` when unnamed. */
  readonly shape: readonly (number | string | null)[];
}

export interface OnnxSignature {
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
}

/** `TensorProto.DataType` → onnxruntime's type names. */
const ELEMENT_TYPES: Record<number, string> = {
  1: "float32",
  2: "uint8",
  3: "int8",
  4: "uint16",
  5: "int16",
  6: "int32",
  7: "int64",
  8: "string",
  9: "bool",
  10: "float16",
  11: "float64",
  12: "uint32",
  13: "uint64",
};

class ProtobufError extends Error {}

/** The fields of one protobuf message, in `bytes[start, end)`. */
interface Field {
  readonly number: number;
  /** For varint fields. */
  readonly value: number;
  /** For length-delimited fields: the payload's range. */
  readonly start: number;
  readonly end: number;
}

function varint(bytes: Uint8Array, at: { pos: number }, end: number): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (at.pos >= end) throw new ProtobufError("truncated varint");
    const byte = bytes[at.pos++] as number;
    value += (byte & 0x7f) * scale; // multiplication, not shifts: sizes above 2^31 stay right
    if (byte < 0x80) return value;
    scale *= 128;
  }
  throw new ProtobufError("varint longer than 10 bytes");
}

function* fields(bytes: Uint8Array, start: number, end: number): Generator<Field> {
  const at = { pos: start };
  while (at.pos < end) {
    const key = varint(bytes, at, end);
    const number = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) {
      yield { number, value: varint(bytes, at, end), start: 0, end: 0 };
    } else if (wire === 2) {
      const length = varint(bytes, at, end);
      const payload = at.pos;
      at.pos += length;
      if (at.pos > end) throw new ProtobufError("truncated field");
      yield { number, value: 0, start: payload, end: at.pos };
    } else if (wire === 1) {
      at.pos += 8;
    } else if (wire === 5) {
      at.pos += 4;
    } else {
      throw new ProtobufError(`unsupported wire type ${wire}`);
    }
  }
  if (at.pos !== end) throw new ProtobufError("truncated message");
}

const decoder = new TextDecoder("utf-8", { fatal: true });
const text = (bytes: Uint8Array, f: Field) => decoder.decode(bytes.subarray(f.start, f.end));

/** `ValueInfoProto { 1: name, 2: TypeProto { 1: Tensor { 1: elem_type, 2: TensorShapeProto } } }`. */
function valueInfo(bytes: Uint8Array, start: number, end: number): OnnxValueInfo {
  let name = "";
  let type = "unknown";
  const shape: (number | string | null)[] = [];
  for (const f of fields(bytes, start, end)) {
    if (f.number === 1) name = text(bytes, f);
    if (f.number !== 2) continue;
    for (const t of fields(bytes, f.start, f.end)) {
      if (t.number !== 1) continue; // tensor_type; sequences and maps stay "unknown"
      for (const tensor of fields(bytes, t.start, t.end)) {
        if (tensor.number === 1) type = ELEMENT_TYPES[tensor.value] ?? "unknown";
        if (tensor.number !== 2) continue;
        for (const dim of fields(bytes, tensor.start, tensor.end)) {
          if (dim.number !== 1) continue;
          let size: number | string | null = null;
          for (const d of fields(bytes, dim.start, dim.end)) {
            if (d.number === 1) size = d.value;
            if (d.number === 2) size = text(bytes, d);
          }
          shape.push(size);
        }
      }
    }
  }
  return { name, type, shape };
}

/**
 * Reads the signature of an ONNX model from its bytes. Graph inputs that are initializers (older
 * exporters list weights among the inputs) are left out: they are not fed. Throws a `TypeError`
 * when the bytes are not an ONNX model.
 */
export function signatureOfBytes(bytes: Uint8Array): OnnxSignature {
  try {
    const inputs: OnnxValueInfo[] = [];
    const outputs: OnnxValueInfo[] = [];
    const initializers = new Set<string>();
    let graphs = 0;
    for (const model of fields(bytes, 0, bytes.length)) {
      if (model.number !== 7) continue; // ModelProto.graph
      graphs++;
      for (const f of fields(bytes, model.start, model.end)) {
        if (f.number === 11) inputs.push(valueInfo(bytes, f.start, f.end));
        else if (f.number === 12) outputs.push(valueInfo(bytes, f.start, f.end));
        else if (f.number === 5) {
          for (const t of fields(bytes, f.start, f.end)) {
            if (t.number === 8) initializers.add(text(bytes, t)); // TensorProto.name
          }
        }
      }
    }
    if (graphs !== 1 || outputs.length === 0) throw new ProtobufError("no graph with outputs");
    return { inputs: inputs.filter((input) => !initializers.has(input.name)), outputs };
  } catch (error) {
    if (!(error instanceof ProtobufError || error instanceof TypeError)) throw error;
    throw new TypeError(`model is not an ONNX model: ${error.message}`, { cause: error });
  }
}

/** What `signatureOfSession` reads of a session: onnxruntime 1.22+ has both. */
interface SessionMetadata {
  readonly inputMetadata?: readonly SessionValueMetadata[];
  readonly outputMetadata?: readonly SessionValueMetadata[];
}

interface SessionValueMetadata {
  readonly name: string;
  readonly isTensor: boolean;
  readonly type?: string;
  readonly shape?: readonly (number | string)[];
}

function fromMetadata(value: SessionValueMetadata): OnnxValueInfo {
  if (!value.isTensor) return { name: value.name, type: "unknown", shape: [] };
  return {
    name: value.name,
    type: value.type ?? "unknown",
    // onnxruntime reports an unnamed free dimension as -1 (or an empty name).
    shape: (value.shape ?? []).map((d) => (d === -1 || d === "" ? null : d)),
  };
}

/** Reads the signature of a loaded session from its metadata. */
export function signatureOfSession(session: SessionMetadata): OnnxSignature {
  if (!Array.isArray(session.inputMetadata) || !Array.isArray(session.outputMetadata)) {
    throw new TypeError(
      "model: this InferenceSession has no inputMetadata/outputMetadata (onnxruntime-node 1.22 or newer has them)",
    );
  }
  return {
    inputs: session.inputMetadata.map(fromMetadata),
    outputs: session.outputMetadata.map(fromMetadata),
  };
}
