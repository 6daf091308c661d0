internal import CZlib

/// gzip decompression through the system zlib. The only Swift code that calls zlib.
enum Zlib {
    /// Inflates every gzip member of `input` (concatenated members are allowed, as `gzip -d` allows them).
    static func gunzip(_ input: UnsafeRawBufferPointer, maximumSize: Int) throws(DataError) -> [UInt8] {
        guard input.count >= 2, input[0] == 0x1F, input[1] == 0x8B else {
            if input.count < 2 { throw .truncatedGzip }
            throw .invalidGzip(reason: "missing the gzip magic bytes 1f 8b at the start")
        }
        var stream = z_stream()
        guard quantkit_inflate_init_gzip(&stream) == Z_OK else {
            throw .invalidGzip(reason: "zlib could not initialise an inflate stream (out of memory?)")
        }
        defer { inflateEnd(&stream) }

        // ISIZE (the last 4 bytes) is the size modulo 2^32 of the last member: a capacity hint only.
        let tail = input.count >= 18 ? input.count - 4 : 0
        let hint = tail > 0 ? Int(input[tail]) | Int(input[tail + 1]) << 8 | Int(input[tail + 2]) << 16
            | Int(input[tail + 3]) << 24 : 0
        var output: [UInt8] = []
        // Deflate expands at most about 1032:1, so a forged ISIZE cannot make this reserve much more than that.
        let bound = input.count > Int.max / 1032 ? Int.max : input.count * 1032
        output.reserveCapacity(max(0, min(hint, maximumSize, bound)))

        let base = UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: UInt8.self))
        var fed = 0  // bytes of input handed to zlib so far
        let chunkSize = 1 << 18
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        while true {
            if stream.avail_in == 0 && fed < input.count {
                let part = min(input.count - fed, Int(UInt32.max))
                stream.next_in = base + fed
                stream.avail_in = UInt32(part)
                fed += part
            }
            var status: Int32 = Z_OK
            let produced: Int = chunk.withUnsafeMutableBufferPointer { buffer in
                stream.next_out = buffer.baseAddress
                stream.avail_out = UInt32(chunkSize)
                status = inflate(&stream, Z_NO_FLUSH)
                return chunkSize - Int(stream.avail_out)
            }
            if produced > 0 {
                guard produced <= maximumSize - output.count else { throw .decompressedSizeLimit(limit: maximumSize) }
                output.append(contentsOf: chunk[0..<produced])
            }
            let inputExhausted = stream.avail_in == 0 && fed == input.count
            switch status {
            case Z_STREAM_END:
                let position = fed - Int(stream.avail_in)
                if position == input.count { return output }
                guard input.count - position >= 2, input[position] == 0x1F, input[position + 1] == 0x8B else {
                    throw .invalidGzip(reason: "\(input.count - position) trailing bytes after the gzip stream "
                                       + "that are not another gzip member")
                }
                guard inflateReset(&stream) == Z_OK else { throw .invalidGzip(reason: "inflateReset failed") }
            case Z_OK:
                // No more input and output space left over: zlib needs bytes the file does not have.
                if inputExhausted && stream.avail_out > 0 { throw .truncatedGzip }
            case Z_BUF_ERROR:
                if inputExhausted { throw .truncatedGzip }
            case Z_MEM_ERROR:
                throw .invalidGzip(reason: "zlib ran out of memory")
            case Z_NEED_DICT:
                throw .invalidGzip(reason: "the stream needs a preset dictionary, which gzip files never use")
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                throw .invalidGzip(reason: message)
            }
        }
    }
}
