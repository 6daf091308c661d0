/// The small classifiers of QuantKit's reference accuracies (digits and Fashion-MNIST), built from the float
/// modules with PyTorch's default initialisation.
///
/// PyTorch: the models behind the accuracy table in the data README, written as `nn.Sequential`s with the same
/// layer order, so their state dicts have the same names.
public enum ReferenceModels {
    /// `Flatten`, then `Linear(inputs, h1) ReLU Linear(h1, h2) ReLU Linear(h2, classes)` for `hidden = [h1, h2]`
    /// (any number of hidden layers). For 28x28 images and `[256, 128]`: the MLP 784-256-128-10.
    ///
    /// Names: `0` (Flatten), `1` (Linear), `2` (ReLU), ... as `nn.Sequential(nn.Flatten(), nn.Linear(...), ...)`.
    /// - Throws: `QuantizationError.invalidOperand` for sizes below 1.
    public static func mlp(inputFeatures: Int, hidden: [Int] = [256, 128], classes: Int = 10,
                           generator: inout RandomGenerator) throws -> Sequential {
        guard inputFeatures >= 1, classes >= 1, hidden.allSatisfy({ $0 >= 1 }) else {
            throw QuantizationError.invalidOperand(
                operation: "ReferenceModels.mlp", reason: "every layer size must be >= 1, got inputs "
                    + "\(inputFeatures), hidden \(hidden), classes \(classes)")
        }
        var layers: [Module] = [Flatten()]
        var width = inputFeatures
        for h in hidden {
            layers.append(try Linear(width, h, generator: &generator))
            layers.append(ReLU())
            width = h
        }
        layers.append(try Linear(width, classes, generator: &generator))
        return try Sequential(layers)
    }

    /// Two conv-BN-ReLU blocks each followed by a 2x2 max pool, then a two-layer classifier:
    /// `conv3x3(c1, padding 1) BN ReLU maxpool2, conv3x3(c2, padding 1) BN ReLU maxpool2, Flatten,
    /// Linear(c2 * (H/4) * (W/4), hidden) ReLU Linear(hidden, classes)`. For 1x28x28 inputs and the defaults: the
    /// Fashion-MNIST CNN (16, 32, fc64).
    ///
    /// Names: `features.0` (Conv2d), `features.1` (BatchNorm2d), `features.2` (ReLU), `features.3` (MaxPool2d),
    /// `features.4`...`features.7`, `flatten`, `classifier.0` (Linear), `classifier.1` (ReLU), `classifier.2`.
    /// - Throws: `QuantizationError.invalidOperand` for sizes below 1 or an image smaller than 4x4.
    public static func cnn(inputChannels: Int = 1, imageSize: Size2d, channels: (Int, Int) = (16, 32),
                           hidden: Int = 64, classes: Int = 10, generator: inout RandomGenerator) throws -> Sequential {
        guard imageSize.height >= 4, imageSize.width >= 4 else {
            throw QuantizationError.invalidOperand(
                operation: "ReferenceModels.cnn", reason: "the image must be at least 4x4, got \(imageSize)")
        }
        let features = try Sequential(
            Conv2d(inputChannels, channels.0, kernelSize: 3, padding: 1, generator: &generator),
            BatchNorm2d(channels.0), ReLU(), MaxPool2d(kernelSize: 2),
            Conv2d(channels.0, channels.1, kernelSize: 3, padding: 1, generator: &generator),
            BatchNorm2d(channels.1), ReLU(), MaxPool2d(kernelSize: 2))
        let flat = channels.1 * (imageSize.height / 4) * (imageSize.width / 4)
        let classifier = try Sequential(Linear(flat, hidden, generator: &generator), ReLU(),
                                        Linear(hidden, classes, generator: &generator))
        return try Sequential(named: [("features", features), ("flatten", Flatten()), ("classifier", classifier)])
    }
}
