/// The JSON header of a safetensors file: a strict, non-recursive parser for exactly the structure the format
/// defines, and the canonical writer. Hand-written so that key order, duplicate keys, integer overflow, invalid
/// UTF-8 and deep nesting are all handled as errors, never traps or stack overflows.
enum SafeTensorsHeader {
    struct TensorInfo {
        var name: String
        var dtype: SafeTensors.DType
        var shape: [Int]
        var begin: Int
        var end: Int
    }

    struct Parsed {
        var tensors: [TensorInfo]
        var metadata: [String: String]?
    }

    // MARK: Parsing

    static func parse(_ bytes: UnsafeRawBufferPointer) throws(SerializationError) -> Parsed {
        var parser = Parser(bytes: bytes)
        return try parser.parseHeader()
    }

    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        func fail(_ reason: String, at offset: Int? = nil) -> SerializationError {
            .invalidHeader(offset: offset ?? position, reason: reason)
        }

        var current: UInt8? { position < bytes.count ? bytes[position] : nil }

        func describeCurrent() -> String {
            guard let byte = current else { return "the end of the header" }
            if byte >= 0x20 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
            return "byte 0x\(String(hexByte: byte))"
        }

        mutating func skipWhitespace() {
            while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { position += 1 }
        }

        mutating func expect(_ ascii: UInt8, _ what: String) throws(SerializationError) {
            guard current == ascii else { throw fail("expected \(what), found \(describeCurrent())") }
            position += 1
        }

        mutating func consume(_ ascii: UInt8) -> Bool {
            guard current == ascii else { return false }
            position += 1
            return true
        }

        mutating func parseHeader() throws(SerializationError) -> Parsed {
            skipWhitespace()  // the reference implementation (0.8) accepts leading whitespace too
            guard current == UInt8(ascii: "{") else {
                throw fail("the header must be a JSON object starting with '{', found \(describeCurrent())")
            }
            position += 1
            var tensors: [TensorInfo] = []
            var names = Set<String>()
            var metadata: [String: String]?
            var sawMetadata = false
            skipWhitespace()
            if !consume(UInt8(ascii: "}")) {
                while true {
                    skipWhitespace()
                    let key = try parseString()
                    skipWhitespace()
                    try expect(UInt8(ascii: ":"), "':' after a key")
                    skipWhitespace()
                    if key == "__metadata__" {
                        guard !sawMetadata else { throw .duplicateName(key) }
                        sawMetadata = true
                        metadata = try parseMetadata()
                    } else {
                        guard names.insert(key).inserted else { throw .duplicateName(key) }
                        tensors.append(try parseTensorInfo(name: key))
                    }
                    skipWhitespace()
                    if consume(UInt8(ascii: ",")) { continue }
                    try expect(UInt8(ascii: "}"), "',' or '}' in the header object")
                    break
                }
            }
            skipWhitespace()
            guard position == bytes.count else {
                throw fail("unexpected \(describeCurrent()) after the header object; only spaces may follow it")
            }
            return Parsed(tensors: tensors, metadata: metadata)
        }

        /// `null` or an object of string values.
        mutating func parseMetadata() throws(SerializationError) -> [String: String]? {
            if bytes.count - position >= 4, Array(bytes[position..<(position + 4)]) == Array("null".utf8) {
                position += 4
                return nil
            }
            try expect(UInt8(ascii: "{"), "an object of strings for __metadata__")
            var result: [String: String] = [:]
            skipWhitespace()
            if consume(UInt8(ascii: "}")) { return result }
            while true {
                skipWhitespace()
                let start = position
                let key = try parseString()
                skipWhitespace()
                try expect(UInt8(ascii: ":"), "':' after a __metadata__ key")
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else {
                    throw fail("__metadata__ values must be strings, found \(describeCurrent())")
                }
                let value = try parseString()
                guard result.updateValue(value, forKey: key) == nil else {
                    throw fail("duplicate __metadata__ key \"\(key)\"", at: start)
                }
                skipWhitespace()
                if consume(UInt8(ascii: ",")) { continue }
                try expect(UInt8(ascii: "}"), "',' or '}' in __metadata__")
                return result
            }
        }

        /// `{"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}` in any key order, each key exactly once.
        mutating func parseTensorInfo(name: String) throws(SerializationError) -> TensorInfo {
            guard current == UInt8(ascii: "{") else {
                throw fail("tensor \"\(name)\" must be an object with dtype, shape and data_offsets, found "
                           + describeCurrent())
            }
            position += 1
            var dtype: SafeTensors.DType?
            var shape: [Int]?
            var offsets: [Int]?
            skipWhitespace()
            if !consume(UInt8(ascii: "}")) {
                while true {
                    skipWhitespace()
                    let keyStart = position
                    let key = try parseString()
                    skipWhitespace()
                    try expect(UInt8(ascii: ":"), "':' after a key")
                    skipWhitespace()
                    switch key {
                    case "dtype":
                        guard dtype == nil else { throw fail("tensor \"\(name)\" repeats \"dtype\"", at: keyStart) }
                        guard current == UInt8(ascii: "\"") else {
                            throw fail("the dtype of tensor \"\(name)\" must be a string, found \(describeCurrent())")
                        }
                        let text = try parseString()
                        guard let value = SafeTensors.DType(rawValue: text) else {
                            throw .unsupportedDType(tensor: name, dtype: text)
                        }
                        dtype = value
                    case "shape":
                        guard shape == nil else { throw fail("tensor \"\(name)\" repeats \"shape\"", at: keyStart) }
                        shape = try parseIntegerArray(what: "the shape of tensor \"\(name)\"")
                    case "data_offsets":
                        guard offsets == nil else {
                            throw fail("tensor \"\(name)\" repeats \"data_offsets\"", at: keyStart)
                        }
                        let start = position
                        let values = try parseIntegerArray(what: "the data_offsets of tensor \"\(name)\"")
                        guard values.count == 2 else {
                            throw fail("the data_offsets of tensor \"\(name)\" must be [begin, end], got "
                                       + "\(values.count) numbers", at: start)
                        }
                        offsets = values
                    default:
                        throw fail("tensor \"\(name)\" has an unknown field \"\(key)\"; expected dtype, shape and "
                                   + "data_offsets", at: keyStart)
                    }
                    skipWhitespace()
                    if consume(UInt8(ascii: ",")) { continue }
                    try expect(UInt8(ascii: "}"), "',' or '}' in tensor \"\(name)\"")
                    break
                }
            }
            guard let dtype, let shape, let offsets else {
                let missing = [dtype == nil ? "dtype" : nil, shape == nil ? "shape" : nil,
                               offsets == nil ? "data_offsets" : nil].compactMap { $0 }
                throw fail("tensor \"\(name)\" lacks " + missing.joined(separator: ", "))
            }
            return TensorInfo(name: name, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
        }

        /// `[n, n, ...]` of non-negative integers that fit in `Int`.
        mutating func parseIntegerArray(what: String) throws(SerializationError) -> [Int] {
            guard consume(UInt8(ascii: "[")) else {
                throw fail("\(what) must be an array of integers, found \(describeCurrent())")
            }
            var values: [Int] = []
            skipWhitespace()
            if consume(UInt8(ascii: "]")) { return values }
            while true {
                skipWhitespace()
                values.append(try parseInteger(what: what))
                skipWhitespace()
                if consume(UInt8(ascii: ",")) { continue }
                try expect(UInt8(ascii: "]"), "',' or ']' in \(what)")
                return values
            }
        }

        mutating func parseInteger(what: String) throws(SerializationError) -> Int {
            let start = position
            if current == UInt8(ascii: "-") {
                throw fail("\(what) must hold non-negative integers, found a negative number")
            }
            var value = 0
            var digits = 0
            var overflow = false
            while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                let (times10, o1) = value.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
                overflow = overflow || o1 || o2
                value = sum
                digits += 1
                position += 1
            }
            guard digits > 0 else { throw fail("\(what) must hold integers, found \(describeCurrent())") }
            if digits > 1 && bytes[start] == UInt8(ascii: "0") {
                throw fail("\(what) holds a number with a leading zero, which JSON forbids", at: start)
            }
            if let byte = current, byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                throw fail("\(what) must hold integers, found a fraction or exponent", at: start)
            }
            guard !overflow else { throw fail("\(what) holds a number larger than \(Int.max)", at: start) }
            return value
        }

        /// A JSON string: strict UTF-8 (no overlong forms, surrogates or code points above U+10FFFF), escapes
        /// including surrogate pairs, no raw control characters.
        mutating func parseString() throws(SerializationError) -> String {
            guard consume(UInt8(ascii: "\"")) else { throw fail("expected a string, found \(describeCurrent())") }
            var utf8: [UInt8] = []
            while true {
                guard let byte = current else { throw fail("unterminated string") }
                switch byte {
                case UInt8(ascii: "\""):
                    position += 1
                    return String(decoding: utf8, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    position += 1
                    try parseEscape(into: &utf8)
                case 0..<0x20:
                    throw fail("raw control character 0x\(String(hexByte: byte)) in a string; JSON needs an escape")
                case 0x20..<0x80:
                    utf8.append(byte)
                    position += 1
                default:
                    try parseMultiByte(into: &utf8)
                }
            }
        }

        mutating func parseEscape(into utf8: inout [UInt8]) throws(SerializationError) {
            guard let byte = current else { throw fail("unterminated escape") }
            position += 1
            switch byte {
            case UInt8(ascii: "\""): utf8.append(0x22)
            case UInt8(ascii: "\\"): utf8.append(0x5C)
            case UInt8(ascii: "/"): utf8.append(0x2F)
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                let start = position - 2
                var code = try parseHex4()
                if (0xDC00...0xDFFF).contains(code) { throw fail("lone low surrogate in a \\u escape", at: start) }
                if (0xD800...0xDBFF).contains(code) {
                    guard consume(UInt8(ascii: "\\")), consume(UInt8(ascii: "u")) else {
                        throw fail("high surrogate not followed by a \\u low surrogate", at: start)
                    }
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw fail("high surrogate not followed by a low surrogate", at: start)
                    }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                // Valid by construction: not a surrogate, at most 0x10FFFF.
                utf8.append(contentsOf: String(Character(Unicode.Scalar(code)!)).utf8)
            default:
                throw fail("invalid escape '\\\(Character(Unicode.Scalar(byte)))'", at: position - 2)
            }
        }

        mutating func parseHex4() throws(SerializationError) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard let byte = current else { throw fail("unterminated \\u escape") }
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw fail("\\u escape needs 4 hex digits, found \(describeCurrent())")
                }
                value = value << 4 | UInt32(digit)
                position += 1
            }
            return value
        }

        /// One UTF-8 sequence of 2 to 4 bytes (RFC 3629's table of well-formed sequences).
        mutating func parseMultiByte(into utf8: inout [UInt8]) throws(SerializationError) {
            let lead = bytes[position]
            let length: Int
            var secondRange: ClosedRange<UInt8> = 0x80...0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; secondRange = 0xA0...0xBF
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; secondRange = 0x80...0x9F
            case 0xF0: length = 4; secondRange = 0x90...0xBF
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; secondRange = 0x80...0x8F
            default: throw fail("invalid UTF-8 lead byte 0x\(String(hexByte: lead))")
            }
            guard bytes.count - position >= length else { throw fail("truncated UTF-8 sequence") }
            for i in 1..<length {
                let byte = bytes[position + i]
                guard (i == 1 ? secondRange : 0x80...0xBF).contains(byte) else {
                    throw fail("invalid UTF-8 continuation byte 0x\(String(hexByte: byte))", at: position + i)
                }
            }
            for i in 0..<length { utf8.append(bytes[position + i]) }
            position += length
        }
    }

    // MARK: Writing

    /// The header JSON as `safetensors.torch.save` writes it: no whitespace, `__metadata__` first (when not
    /// empty, keys sorted by UTF-8 bytes), then the tensors in `order` with their offsets, padded with spaces to a
    /// multiple of 8 bytes.
    static func serialize(_ order: [(name: String, tensor: SafeTensors.RawTensor)], metadata: [String: String])
        -> [UInt8]
    {
        var json: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        func separator() {
            if !first { json.append(UInt8(ascii: ",")) }
            first = false
        }
        if !metadata.isEmpty {
            separator()
            appendString("__metadata__", to: &json)
            json.append(contentsOf: Array(":{".utf8))
            let keys = metadata.keys.sorted { Array($0.utf8).lexicographicallyPrecedes($1.utf8) }
            for (i, key) in keys.enumerated() {
                if i > 0 { json.append(UInt8(ascii: ",")) }
                appendString(key, to: &json)
                json.append(UInt8(ascii: ":"))
                appendString(metadata[key]!, to: &json)
            }
            json.append(UInt8(ascii: "}"))
        }
        var offset = 0
        for (name, tensor) in order {
            separator()
            appendString(name, to: &json)
            json.append(contentsOf: Array(":{\"dtype\":".utf8))
            appendString(tensor.dtype.rawValue, to: &json)
            json.append(contentsOf: Array(",\"shape\":[".utf8))
            json.append(contentsOf: Array(tensor.shape.map(String.init).joined(separator: ",").utf8))
            let end = offset + tensor.bytes.count
            json.append(contentsOf: Array("],\"data_offsets\":[\(offset),\(end)]}".utf8))
            offset = end
        }
        json.append(UInt8(ascii: "}"))
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
        return json
    }

    /// A JSON string escaped as serde_json does: `\"`, `\\`, `\b \f \n \r \t`, other controls as `\u00xx`.
    static func appendString(_ string: String, to json: inout [UInt8]) {
        json.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case 0x22: json.append(contentsOf: [0x5C, 0x22])
            case 0x5C: json.append(contentsOf: [0x5C, 0x5C])
            case 0x08: json.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: json.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x0A: json.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: json.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: json.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20: json.append(contentsOf: Array("\\u00\(String(hexByte: byte))".utf8))
            default: json.append(byte)
            }
        }
        json.append(UInt8(ascii: "\""))
    }
}
