import Foundation

/// `--svg PATH`: a grouped bar chart of the GEMM speedups over cblas_sgemm, one group per shape and one bar per
/// kernel, from the 1-thread rows (or the lowest thread count measured), on a log2 axis with a reference line at
/// 1.0x. Plain SVG 1.1 with inline attributes only, so that it renders the same in browsers, GitHub's README view
/// and rsvg-convert.
struct SVGReporter: Reporter {
    let path: String

    static let colors = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9"]   // Okabe-Ito

    func report(machine: MachineInfo, results: [BenchResult]) throws {
        let svg = Self.render(machine: machine, results: results)
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try svg.write(to: url, atomically: true, encoding: .utf8)
    }

    static func render(machine: MachineInfo, results: [BenchResult]) -> String {
        let gemm = results.filter { $0.gemm != nil && $0.speedup != nil }
        let threads = gemm.map(\.threads).min() ?? 1
        let rows = gemm.filter { $0.threads == threads }
        var shapes: [GemmDims] = [], kernels: [String] = []
        for r in rows {
            if let g = r.gemm, !shapes.contains(g) { shapes.append(g) }
            if !kernels.contains(r.kernel) { kernels.append(r.kernel) }
        }
        func speedup(_ kernel: String, _ shape: GemmDims) -> Double? {
            rows.first { $0.kernel == kernel && $0.gemm == shape }?.speedup
        }

        // Layout (px): title block, plot, x labels, legend, footnotes. Groups widen with the number of bars so that
        // each bar's value label still fits.
        let groupWidth = max(120.0, 24.0 * Double(kernels.count))
        let left = 78.0, right = 24.0, top = 92.0, plotHeight = 340.0
        let width = max(1040, left + right + groupWidth * Double(max(shapes.count, 1)))
        let plotWidth = width - left - right
        let bottom = top + plotHeight
        let height = bottom + 140

        // Log2 axis: memory-bound shapes (M = 1, 8) reach 10x and more while the square ones stay near 2x, and a
        // linear axis would flatten the latter. Bars start at the bottom octave; every bar carries its value.
        let values = rows.compactMap(\.speedup).filter { $0 > 0 }
        let lo = pow(2, log2(min(values.min() ?? 1, 1) / 1.15).rounded(.down))
        let hi = pow(2, max(log2((values.max() ?? 1) * 1.25).rounded(.up), log2(lo) + 2))
        func y(_ v: Double) -> Double {
            bottom - (log2(max(v, lo)) - log2(lo)) / (log2(hi) - log2(lo)) * plotHeight
        }

        var out = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="\(f(width))" height="\(f(height))" \
            viewBox="0 0 \(f(width)) \(f(height))" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">

            """
        func add(_ s: String) { out += s + "\n" }
        add(##"<rect x="0" y="0" width="\##(f(width))" height="\##(f(height))" fill="#ffffff"/>"##)

        let threadText = threads == 1 ? "1 thread" : "\(threads) threads"
        let families = [("int8", kernels.contains { !$0.hasPrefix("f16") && !$0.hasPrefix("bf16") }),
                        ("fp16", kernels.contains { $0.hasPrefix("f16") }),
                        ("bf16", kernels.contains { $0.hasPrefix("bf16") })]
            .filter(\.1).map(\.0).joined(separator: " / ")
        add(text(width / 2, 30, "QuantKit \(families.isEmpty ? "" : families + " ")GEMM: speedup over OpenBLAS "
                 + "cblas_sgemm (fp32), \(threadText)",
                 size: 19, weight: "bold", anchor: "middle"))
        add(text(width / 2, 52, "CPU: \(machine.cpu)   ·   QuantKit ISA: \(rows.first?.isa ?? machine.isa)   ·   "
                 + "OpenBLAS core: \(machine.openblasCore)"
                 + (machine.openblasCoretypeEnv.map { " (OPENBLAS_CORETYPE=\($0))" } ?? ""),
                 size: 13.5, anchor: "middle", fill: "#333333"))
        add(text(width / 2, 71, "QuantKit \(machine.quantkitVersion)   ·   \(machine.date)   ·   "
                 + "speedup = sgemm time / QuantKit time on the same shape; higher is better",
                 size: 11.5, anchor: "middle", fill: "#666666"))

        if rows.isEmpty {
            add(text(width / 2, top + plotHeight / 2, "no GEMM results in this run (see --filter and --list)",
                     size: 15, anchor: "middle", fill: "#b00020"))
            return out + "</svg>\n"
        }

        // Grid: every octave labelled, 1.5x the octave as a lighter line.
        var v = lo
        while v <= hi * 1.0001 {
            add(##"<line x1="\##(f(left))" y1="\##(f(y(v)))" x2="\##(f(left + plotWidth))" y2="\##(f(y(v)))" "##
                + ##"stroke="#dddddd" stroke-width="1"/>"##)
            add(text(left - 8, y(v) + 4, axisLabel(v), size: 11.5, anchor: "end", fill: "#444444"))
            if v * 1.5 < hi {
                add(##"<line x1="\##(f(left))" y1="\##(f(y(v * 1.5)))" x2="\##(f(left + plotWidth))" "##
                    + ##"y2="\##(f(y(v * 1.5)))" stroke="#f0f0f0" stroke-width="1"/>"##)
            }
            v *= 2
        }
        add(text(22, top + plotHeight / 2, "speedup over cblas_sgemm (log scale)", size: 12.5, anchor: "middle",
                 fill: "#333333", rotate: true))

        // Bars with their values.
        let groupStep = plotWidth / Double(shapes.count)
        let barArea = min(groupStep, groupWidth) * 0.84
        let barWidth = barArea / Double(max(kernels.count, 1))
        for (gi, shape) in shapes.enumerated() {
            let gx = left + groupStep * Double(gi) + (groupStep - barArea) / 2
            for (ki, kernel) in kernels.enumerated() {
                guard let s = speedup(kernel, shape) else { continue }
                let x = gx + barWidth * Double(ki)
                let color = colors[ki % colors.count]
                add(##"<rect x="\##(f(x + 1))" y="\##(f(y(s)))" width="\##(f(barWidth - 2))" "##
                    + ##"height="\##(f(bottom - y(s)))" fill="\##(color)"><title>\##(escape(kernel)) "##
                    + ##"\##(escape(GemmCases.shapeName(shape))): \##(String(format: "%.2f", s))x</title></rect>"##)
                add(text(x + barWidth / 2, y(s) - 4, String(format: s >= 10 ? "%.0f" : "%.1f", s), size: 10,
                         anchor: "middle", fill: "#222222"))
            }
            let (line1, line2) = label(shape)
            let cx = left + groupStep * (Double(gi) + 0.5)
            add(text(cx, bottom + 19, line1, size: 12.5, anchor: "middle", fill: "#222222"))
            add(text(cx, bottom + 35, line2, size: 12.5, anchor: "middle", fill: "#222222"))
            if gi > 0 {
                let sx = left + groupStep * Double(gi)
                add(##"<line x1="\##(f(sx))" y1="\##(f(bottom))" x2="\##(f(sx))" y2="\##(f(bottom + 38))" "##
                    + ##"stroke="#cccccc" stroke-width="1"/>"##)
            }
        }

        // Axes and the 1.0x reference (sgemm's speed), drawn over the bars.
        add(##"<line x1="\##(f(left))" y1="\##(f(bottom))" x2="\##(f(left + plotWidth))" y2="\##(f(bottom))" "##
            + ##"stroke="#333333" stroke-width="1.2"/>"##)
        add(##"<line x1="\##(f(left))" y1="\##(f(top))" x2="\##(f(left))" y2="\##(f(bottom))" "##
            + ##"stroke="#333333" stroke-width="1.2"/>"##)
        add(##"<line x1="\##(f(left))" y1="\##(f(y(1)))" x2="\##(f(left + plotWidth))" y2="\##(f(y(1)))" "##
            + ##"stroke="#c0392b" stroke-width="1.8" stroke-dasharray="8 5"/>"##)

        // Legend (kernels, then the reference line), centred under the x labels.
        let legendY = bottom + 66
        let legendSize = 13.0
        let reference = "1.0x = cblas_sgemm"
        func itemWidth(_ label: String, swatch: Double) -> Double {
            swatch + 6 + 0.62 * legendSize * Double(label.count) + 24
        }
        let widths = kernels.map { itemWidth($0, swatch: 14) } + [itemWidth(reference, swatch: 28)]
        var lx = (width - widths.reduce(0, +) + 24) / 2
        for (ki, kernel) in kernels.enumerated() {
            add(##"<rect x="\##(f(lx))" y="\##(f(legendY - 11))" width="14" height="14" "##
                + ##"fill="\##(colors[ki % colors.count])"/>"##)
            add(text(lx + 20, legendY, kernel, size: legendSize, fill: "#222222"))
            lx += widths[ki]
        }
        add(##"<line x1="\##(f(lx))" y1="\##(f(legendY - 4))" x2="\##(f(lx + 28))" y2="\##(f(legendY - 4))" "##
            + ##"stroke="#c0392b" stroke-width="1.8" stroke-dasharray="8 5"/>"##)
        add(text(lx + 34, legendY, reference, size: legendSize, fill: "#c0392b"))

        let notes = [
            "qu8_gemm: uint8 activations over the full 8-bit range, uint8 output   ·   "
                + "qu8_gemm_7bit: uint8 activations <= 127 (reduce_range)   ·   qs8_gemm: int8 activations and output",
            "dynamic_linear: fp32 in and out, activations quantized on every call   ·   "
                + "f16_gemm: fp16 weights, fp32 activations and sums   ·   bf16_gemm: bf16 weights and activations, "
                + "fp32 sums",
            "sgemm: y = x wᵀ in fp32, same shape and thread count   ·   weights are packed once, outside the timing; "
                + "every row is the median of interleaved samples of QuantKit and sgemm",
        ]
        for (i, note) in notes.enumerated() {
            add(text(width / 2, legendY + 28 + 16 * Double(i), note, size: 11, anchor: "middle", fill: "#555555"))
        }
        return out + "</svg>\n"
    }

    static func axisLabel(_ v: Double) -> String {
        v >= 1 ? String(format: "%.0fx", v) : String(format: v >= 0.25 ? "%.2gx" : "%.3gx", v)
    }

    /// Two short lines naming a shape.
    static func label(_ d: GemmDims) -> (String, String) {
        if d.m == d.n && d.n == d.k { return ("M=N=K", "\(d.m)") }
        if d.n == d.k { return ("M=\(d.m)", "N=K=\(d.n)") }
        return ("M=\(d.m)", "N=\(d.n) K=\(d.k)")
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func text(_ x: Double, _ y: Double, _ s: String, size: Double, weight: String? = nil,
                     anchor: String = "start", fill: String = "#000000", rotate: Bool = false) -> String {
        var attrs = ##"x="\##(f(x))" y="\##(f(y))" font-size="\##(f(size))" "##
            + ##"text-anchor="\##(anchor)" fill="\##(fill)""##
        if let weight { attrs += ##" font-weight="\##(weight)""## }
        if rotate { attrs += ##" transform="rotate(-90 \##(f(x)) \##(f(y)))""## }
        return "<text \(attrs)>\(escape(s))</text>"
    }
}
