// A small JSON reader for the golden fixtures. Numbers stay as their literal text so that floats are converted
// exactly once, by Float(_:) (the fixtures hold shortest round-trip float32 decimals); going through Double first
// could double-round. Python's NaN / Infinity / -Infinity extensions are accepted as number literals.

struct JSONError: Error, CustomStringConvertible {
    var description: String
}

enum JSONValue: Sendable, Equatable {
    case object([String: JSONValue])
    case array([JSONValue])
    case string(String)
    case number(String)   // the literal, e.g. "-1.5e-07"
    case bool(Bool)
    case null

    subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    var arrayValue: [JSONValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    var numberLiteral: String? {
        if case .number(let literal) = self { return literal }
        return nil
    }

    /// The float32 value of a number literal, converted directly from the text.
    func float() throws -> Float {
        guard let literal = numberLiteral else { throw JSONError(description: "expected a number, got \(self)") }
        switch literal {
        case "NaN": return .nan
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        default: break
        }
        guard let value = Float(literal) else { throw JSONError(description: "not a float literal: \(literal)") }
        return value
    }

    /// An integer literal (no fraction or exponent).
    func int() throws -> Int {
        guard let literal = numberLiteral, let value = Int(literal) else {
            throw JSONError(description: "expected an integer literal, got \(self)")
        }
        return value
    }

    func floats() throws -> [Float] {
        guard let values = arrayValue else { throw JSONError(description: "expected an array of numbers") }
        return try values.map { try $0.float() }
    }

    func ints() throws -> [Int] {
        guard let values = arrayValue else { throw JSONError(description: "expected an array of integers") }
        return try values.map { try $0.int() }
    }
}

struct JSONReader {
    private let bytes: [UInt8]
    private var position = 0

    static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        var reader = JSONReader(bytes: bytes)
        let value = try reader.value()
        reader.skipWhitespace()
        guard reader.position == bytes.count else { throw reader.error("trailing characters") }
        return value
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private func error(_ message: String) -> JSONError {
        JSONError(description: "JSON: \(message) at byte \(position)")
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    private mutating func expect(_ literal: String) throws {
        for byte in literal.utf8 {
            guard position < bytes.count, bytes[position] == byte else { throw error("expected \(literal)") }
            position += 1
        }
    }

    private mutating func value() throws -> JSONValue {
        skipWhitespace()
        guard position < bytes.count else { throw error("unexpected end") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "N"): try expect("NaN"); return .number("NaN")
        case UInt8(ascii: "I"): try expect("Infinity"); return .number("Infinity")
        default: return .number(try number())
        }
    }

    private mutating func object() throws -> JSONValue {
        position += 1
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a key") }
            let key = try string()
            skipWhitespace()
            try expect(":")
            members[key] = try value()
            skipWhitespace()
            guard position < bytes.count else { throw error("unterminated object") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            if bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
            throw error("expected , or }")
        }
    }

    private mutating func array() throws -> JSONValue {
        position += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return .array(elements) }
        while true {
            elements.append(try value())
            skipWhitespace()
            guard position < bytes.count else { throw error("unterminated array") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            if bytes[position] == UInt8(ascii: "]") { position += 1; return .array(elements) }
            throw error("expected , or ]")
        }
    }

    /// A number literal per the JSON grammar (plus -Infinity), returned as text.
    private mutating func number() throws -> String {
        let start = position
        if bytes[position] == UInt8(ascii: "-") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "I") {
                try expect("Infinity")
                return "-Infinity"
            }
        }
        func digits(_ reader: inout JSONReader) -> Int {
            let begin = reader.position
            while reader.position < reader.bytes.count,
                  (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(reader.bytes[reader.position]) {
                reader.position += 1
            }
            return reader.position - begin
        }
        guard digits(&self) > 0 else { throw error("expected a number") }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard digits(&self) > 0 else { throw error("expected fraction digits") }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            guard digits(&self) > 0 else { throw error("expected exponent digits") }
        }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    private mutating func string() throws -> String {
        position += 1
        var scalars = String.UnicodeScalarView()
        var pendingHighSurrogate: UInt32?
        var raw: [UInt8] = []
        func flushRaw() {
            if !raw.isEmpty { scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars) }
            raw.removeAll(keepingCapacity: true)
        }
        while true {
            guard position < bytes.count else { throw error("unterminated string") }
            let byte = bytes[position]
            position += 1
            if byte == UInt8(ascii: "\"") { flushRaw(); return String(scalars) }
            guard byte == UInt8(ascii: "\\") else { raw.append(byte); continue }
            flushRaw()
            guard position < bytes.count else { throw error("unterminated escape") }
            let escape = bytes[position]
            position += 1
            let simple: [UInt8: UInt8] = [UInt8(ascii: "\""): 0x22, UInt8(ascii: "\\"): 0x5C, UInt8(ascii: "/"): 0x2F,
                                          UInt8(ascii: "b"): 0x08, UInt8(ascii: "f"): 0x0C, UInt8(ascii: "n"): 0x0A,
                                          UInt8(ascii: "r"): 0x0D, UInt8(ascii: "t"): 0x09]
            if let replacement = simple[escape] {
                scalars.append(Unicode.Scalar(replacement))
                continue
            }
            guard escape == UInt8(ascii: "u"), position + 4 <= bytes.count,
                  let code = UInt32(String(decoding: bytes[position..<position + 4], as: UTF8.self), radix: 16)
            else { throw error("bad escape") }
            position += 4
            if (0xD800..<0xDC00).contains(code) { pendingHighSurrogate = code; continue }
            var value = code
            if (0xDC00..<0xE000).contains(code), let high = pendingHighSurrogate {
                value = 0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00)
            }
            pendingHighSurrogate = nil
            scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
        }
    }
}
