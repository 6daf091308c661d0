import XCTest
import QuantKit

/// The presets build what PyTorch 2.15's do (types, dtypes, schemes and effective ranges), fresh on every call.
final class QConfigTests: XCTestCase {
    private func observer(_ value: ObserverOrFakeQuantize) throws -> any Observer {
        let base = try XCTUnwrap(value.observer)
        return try XCTUnwrap(base as? any Observer, "\(type(of: base)) is not a quantization observer")
    }

    private func check(_ value: ObserverOrFakeQuantize, _ type: Any.Type, _ dtype: QuantizedDType, _ qscheme: QScheme,
                       _ range: ClosedRange<Int>, file: StaticString = #filePath, line: UInt = #line) throws {
        let o = try observer(value)
        XCTAssertTrue(Swift.type(of: o) == type, "\(Swift.type(of: o)) != \(type)", file: file, line: line)
        XCTAssertEqual(o.dtype, dtype, file: file, line: line)
        XCTAssertEqual(o.qscheme, qscheme, file: file, line: line)
        XCTAssertEqual(o.quantMin...o.quantMax, range, file: file, line: line)
    }

    func testPostTrainingPresets() throws {
        try check(QConfig.default.activation(), MinMaxObserver.self, .quint8, .perTensorAffine, 0...127)
        try check(QConfig.default.weight(), MinMaxObserver.self, .qint8, .perTensorSymmetric, -128...127)
        try check(QConfig.defaultPerChannel.weight(), PerChannelMinMaxObserver.self, .qint8, .perChannelSymmetric,
                  -128...127)
        for backend in [QuantizationBackend.x86, .fbgemm] {
            let q = QConfig.defaultQConfig(backend: backend)
            try check(q.activation(), HistogramObserver.self, .quint8, .perTensorAffine, 0...127)
            try check(q.weight(), PerChannelMinMaxObserver.self, .qint8, .perChannelSymmetric, -128...127)
        }
        let qnnpack = QConfig.defaultQConfig(backend: .qnnpack)
        try check(qnnpack.activation(), HistogramObserver.self, .quint8, .perTensorAffine, 0...255)
        try check(qnnpack.weight(), MinMaxObserver.self, .qint8, .perTensorSymmetric, -128...127)
        let onednn = QConfig.defaultQConfig(backend: .onednn)
        try check(onednn.activation(), HistogramObserver.self, .quint8, .perTensorAffine, 0...255)
        try check(onednn.weight(), PerChannelMinMaxObserver.self, .qint8, .perChannelSymmetric, -128...127)
    }

    func testDynamicAndFloat16Presets() throws {
        for (q, perChannel) in [(QConfig.defaultDynamic, false), (QConfig.perChannelDynamic, true)] {
            let act = try XCTUnwrap(try q.activation().observer as? PlaceholderObserver)
            XCTAssertTrue(act.isDynamic)
            XCTAssertEqual(act.dtype, .quint8)
            XCTAssertEqual(act.quantMin, 0)
            XCTAssertEqual(act.quantMax, 255)
            XCTAssertThrowsError(try q.activation().calculateQParams())
            try check(q.weight(), perChannel ? PerChannelMinMaxObserver.self : MinMaxObserver.self, .qint8,
                      perChannel ? .perChannelSymmetric : .perTensorSymmetric, -128...127)
        }
        for (q, dynamic) in [(QConfig.float16Dynamic, true), (QConfig.float16Static, false)] {
            let act = try XCTUnwrap(try q.activation().observer as? PlaceholderObserver)
            let weight = try XCTUnwrap(try q.weight().observer as? PlaceholderObserver)
            XCTAssertEqual(act.dtype, .float16)
            XCTAssertEqual(act.isDynamic, dynamic)
            XCTAssertEqual(weight.dtype, .float16)
            XCTAssertFalse(weight.isDynamic)
        }
    }

    func testQATPresets() throws {
        // default_qat_qconfig: FakeQuantize over moving averages, activations reduce_range 0...127.
        guard case let .fakeQuantize(act) = try QConfig.defaultQAT.activation() else { return XCTFail() }
        XCTAssertTrue(act is FakeQuantize)
        try check(QConfig.defaultQAT.activation(), MovingAverageMinMaxObserver.self, .quint8, .perTensorAffine, 0...127)
        try check(QConfig.defaultQAT.weight(), MovingAverageMinMaxObserver.self, .qint8, .perTensorSymmetric,
                  -128...127)
        // v2: fused modules, no reduce_range.
        try check(QConfig.defaultQATv2.activation(), MovingAverageMinMaxObserver.self, .quint8, .perTensorAffine,
                  0...255)
        // get_default_qat_qconfig('x86') (version 1): fused, reduce_range, per-channel weights.
        let x86 = try QConfig.defaultQATQConfig()
        guard case let .fakeQuantize(fused) = try x86.activation() else { return XCTFail() }
        XCTAssertTrue(fused is FusedMovingAvgObsFakeQuantize)
        try check(x86.activation(), MovingAverageMinMaxObserver.self, .quint8, .perTensorAffine, 0...127)
        try check(x86.weight(), MovingAveragePerChannelMinMaxObserver.self, .qint8, .perChannelSymmetric, -128...127)
        let qnnpack = try QConfig.defaultQATQConfig(backend: .qnnpack)
        try check(qnnpack.activation(), MovingAverageMinMaxObserver.self, .quint8, .perTensorAffine, 0...255)
        try check(qnnpack.weight(), MovingAverageMinMaxObserver.self, .qint8, .perTensorSymmetric, -128...127)
        // version 0: plain FakeQuantize.
        let v0 = try QConfig.defaultQATQConfig(backend: .x86, version: 0)
        guard case let .fakeQuantize(plain) = try v0.activation() else { return XCTFail() }
        XCTAssertTrue(plain is FakeQuantize)
        try check(v0.weight(), MovingAveragePerChannelMinMaxObserver.self, .qint8, .perChannelSymmetric, -128...127)
        XCTAssertThrowsError(try QConfig.defaultQATQConfig(version: 2))
    }

    func testFactoriesMakeFreshInstancesThatCalibrate() throws {
        let q = QConfig.default
        let a = try observer(q.activation()), b = try observer(q.activation())
        XCTAssertFalse(a === b)
        try a.observe(Tensor<Float>(shape: [4], scalars: [-1, 0, 2, 3]))
        let p = try a.calculateQParams()
        // MinMax on 0...127 with min -1, max 3: scale 4/127, zero point round(1 / scale).
        XCTAssertEqual(p.scale, Float(4) / 127, accuracy: 1e-7)
        XCTAssertEqual(p.zeroPoint, 32)
        XCTAssertEqual(try b.calculateQParams().scale, 1)   // untouched: PyTorch's uncalibrated (1.0, 0)
        XCTAssertEqual(String(describing: q), "QConfig(default_qconfig)")
    }
}
