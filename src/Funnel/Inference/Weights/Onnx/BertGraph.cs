namespace Funnel.Inference.Weights.Onnx;

/// <summary>How stored int8/uint8 values become weights: (q − zero point) × scale, one scale for the
/// whole tensor (<see cref="Axis"/> −1) or one per index of the stored tensor's axis 0 or 1.</summary>
internal sealed record Dequantization(OnnxTensor Scale, OnnxTensor? ZeroPoint, int Axis);

/// <summary>
/// Where a Hugging Face tensor is in the graph: a stored tensor, transposed when stored [in, out] (the
/// MatMul layout), dequantized when quantized. <see cref="Origin"/> describes it for errors.
/// </summary>
internal sealed record MappedTensor(string Name, OnnxTensor Stored, bool Transposed, Dequantization? Dequantization, string Origin)
{
    /// <summary>The shape in Hugging Face layout.</summary>
    public long[] Shape => Transposed ? [.. Stored.Dims.Reverse()] : Stored.Dims;

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// Names the weights of a Hugging Face BERT ONNX export and proves, cheaply, that the graph is the BERT
/// that config.json describes — otherwise it refuses the graph, naming the node and what was expected.
/// Named initializers keep their names; anonymous linear weights are named by the <c>X.bias</c> Add that
/// consumes their MatMul and by the node's module path (<c>/encoder/layer.0/…/query/MatMul</c>), which
/// must agree. Then: every encoder tensor present with its config shape, no float tensor left that is
/// not a BERT weight, only plain ONNX operators that BERT exports contain, one exact GELU (Erf) and one
/// softmax per layer, 2·layers + 1 LayerNorms, and query, key and value split into config.json's heads.
/// </summary>
internal sealed class BertGraph
{
    /// <summary>Operators of torch.onnx / optimum BERT exports (opsets 11–17), of their float16 conversion
    /// and of onnxruntime's dynamic quantization; anything else computes something BERT does not.</summary>
    private static readonly HashSet<string> Operators = new(StringComparer.Ordinal)
    {
        "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Erf", "Tanh", "Softmax", "ReduceMean", "LayerNormalization",
        "MatMul", "Gemm", "Gather", "Shape", "Reshape", "Transpose", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast",
        "Constant", "ConstantOfShape", "Expand", "Equal", "Where", "Range", "Not", "Less", "Identity", "Dropout",
        "DynamicQuantizeLinear", "MatMulInteger", "DequantizeLinear",
    };

    private readonly OnnxModel _model;
    private readonly BertConfig _config;
    private readonly Dictionary<string, OnnxTensor> _constants = new(StringComparer.Ordinal);
    private readonly Dictionary<string, OnnxNode> _producers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<OnnxNode>> _consumers = new(StringComparer.Ordinal);
    /// <summary>Stored tensors already accounted for: weights, and the scales and zero points of quantized ones.</summary>
    private readonly HashSet<OnnxTensor> _claimed = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<string, MappedTensor> _tensors = new(StringComparer.Ordinal);
    /// <summary>Each linear layer's output after its bias, by weight name.</summary>
    private readonly Dictionary<string, (string Value, OnnxNode Node)> _linearOutputs = new(StringComparer.Ordinal);

    private string Path => _model.Path;

    private BertGraph(OnnxModel model, BertConfig config)
    {
        _model = model;
        _config = config;
        foreach (OnnxTensor t in model.Graph.Initializers) _constants[t.Name] = t;
        foreach (OnnxNode node in model.Graph.Nodes)
        {
            foreach (string output in node.Outputs) _producers[output] = node;
            foreach (string input in node.Inputs.Where(i => i.Length > 0))
            {
                if (!_consumers.TryGetValue(input, out List<OnnxNode>? list)) _consumers[input] = list = [];
                list.Add(node);
            }
            if (node.OpType == "Constant" && node.Outputs.Count == 1 && node.Attribute("value")?.Tensor is { } value)
                _constants[node.Outputs[0]] = value;
        }
    }

    /// <summary>The graph's weights by Hugging Face name without the <c>bert.</c> prefix.</summary>
    public static IReadOnlyDictionary<string, MappedTensor> Map(OnnxModel model, BertConfig config)
    {
        if (model.Graph.Nodes.FirstOrDefault(n => n.Outputs.Count == 0 || n.Outputs.Any(o => o.Length == 0)) is { } outputless)
            throw new ModelFormatException($"{model.Path}: {outputless} has no output name");
        var graph = new BertGraph(model, config);
        graph.CheckDomains();
        if (model.Graph.SparseInitializers > 0)
            throw new ModelFormatException($"{model.Path}: the graph has {model.Graph.SparseInitializers} sparse initializer(s), which Funnel does not read");
        foreach (OnnxNode node in model.Graph.Nodes)
        {
            switch (node.OpType)
            {
                case "MatMul" or "Gemm" or "MatMulInteger": graph.MapLinear(node); break;
                case "Gather": graph.MapQuantizedGather(node); break;
            }
        }
        graph.MapNamedConstants();
        IReadOnlyDictionary<string, MappedTensor> tensors = graph.CheckCoverage();
        graph.CheckOperators();
        graph.CheckStructure();
        graph.CheckHeads();
        return tensors;
    }

    private void CheckDomains()
    {
        foreach (OnnxNode node in _model.Graph.Nodes.Where(n => n.Domain is not ("" or "ai.onnx")))
        {
            string why = node.Domain == "com.microsoft"
                ? "an ONNX Runtime fused operator, which graph optimization writes; export the model without graph optimization (torch.onnx.export, or optimum-cli export onnx without --optimize)"
                : "not a standard ONNX operator";
            string producer = _model.Proto.Producer.Length > 0 ? $" (the file was written by {_model.Proto.Producer})" : "";
            throw new ModelFormatException($"{Path}: {node} is {why}; Funnel reads plain ONNX BERT graphs (operators of the ai.onnx domain only){producer}");
        }
    }

    // ------------------------------------------------------------ linear layers

    /// <summary>A constant operand: the stored tensor, whether a Transpose sits between it and its use, and its dequantization.</summary>
    private sealed record ConstantOperand(OnnxTensor Tensor, bool ViaTranspose, Dequantization? Dequantization);

    /// <summary>Follows <paramref name="value"/> back through Identity, Cast, 2-D Transpose and DequantizeLinear to a stored tensor.</summary>
    private ConstantOperand? Resolve(string value)
    {
        if (value.Length == 0) return null;
        if (_constants.TryGetValue(value, out OnnxTensor? stored)) return new ConstantOperand(stored, false, null);
        if (!_producers.TryGetValue(value, out OnnxNode? p)) return null;
        switch (p.OpType)
        {
            case "Identity" or "Cast":
                return Resolve(p.Input(0));
            case "Transpose":
                ConstantOperand? inner = Resolve(p.Input(0));
                if (inner is null) return null;
                if (inner.Tensor.Dims.Length != 2 || p.Attribute("perm") is { } perm && !perm.Ints.SequenceEqual([1L, 0L]))
                    throw new ModelFormatException($"{Path}: {p} transposes the constant '{inner.Tensor.Name}' {inner.Tensor.ShapeText} other than as a matrix");
                return inner with { ViaTranspose = !inner.ViaTranspose };
            case "DequantizeLinear":
                ConstantOperand? q = Resolve(p.Input(0));
                if (q is null) return null;
                if (q.ViaTranspose || q.Dequantization is not null || q.Tensor.Dims.Length != 2)
                    throw new ModelFormatException($"{Path}: {p} dequantizes '{q.Tensor.Name}' {q.Tensor.ShapeText}; expected a stored 2-D int8/uint8 weight");
                return q with { Dequantization = Quantization(p, q.Tensor, p.Input(1), p.Input(2), (int)p.Int("axis", 1)) };
            default:
                return null;
        }
    }

    /// <summary>The scale and zero point of a quantized 2-D weight: one each, or one per index of <paramref name="axis"/>.</summary>
    private Dequantization Quantization(OnnxNode node, OnnxTensor weight, string scaleName, string zeroPointName, int axis)
    {
        if (weight.DataType is not (OnnxDataType.Int8 or OnnxDataType.UInt8))
            throw new ModelFormatException($"{Path}: {node}: quantized weight '{weight.Name}' is {weight.DataType}, expected INT8 or UINT8");
        OnnxTensor scale = _constants.GetValueOrDefault(scaleName)
            ?? throw new ModelFormatException($"{Path}: {node}: the scale of '{weight.Name}' ('{scaleName}') is not a constant");
        OnnxTensor? zeroPoint = zeroPointName.Length == 0 ? null : _constants.GetValueOrDefault(zeroPointName)
            ?? throw new ModelFormatException($"{Path}: {node}: the zero point of '{weight.Name}' ('{zeroPointName}') is not a constant");
        long count = scale.ElementCount;
        if (axis < 0) axis += 2;
        if (count != 1 && (axis is not (0 or 1) || axis >= weight.Dims.Length || scale.Dims.Length != 1 || count != weight.Dims[axis]))
            throw new ModelFormatException($"{Path}: {node}: scale '{scale.Name}' {scale.ShapeText} fits neither the whole of '{weight.Name}' {weight.ShapeText} nor its axis {axis}");
        if (zeroPoint is not null && (zeroPoint.ElementCount != count || zeroPoint.DataType != weight.DataType))
            throw new ModelFormatException($"{Path}: {node}: zero point '{zeroPoint.Name}' {zeroPoint.DataType} {zeroPoint.ShapeText} does not match scale '{scale.Name}' {scale.ShapeText} of {weight.DataType} weight '{weight.Name}'");
        _claimed.Add(scale);
        if (zeroPoint is not null) _claimed.Add(zeroPoint);
        return new Dequantization(scale, zeroPoint, count == 1 ? -1 : axis);
    }

    private void MapLinear(OnnxNode node)
    {
        if (Resolve(node.Input(0)) is { } a)
            throw new ModelFormatException($"{Path}: {node} multiplies the constant '{a.Tensor.Name}' from the left; BERT's linear layers take the activations first");
        string? gemmBias = null;
        ConstantOperand? weight;
        bool transposed; // stored [in, out]
        string output;
        switch (node.OpType)
        {
            case "Gemm":
                if (node.Int("transA", 0) != 0 || node.Float("alpha", 1f) != 1f || (node.Input(2).Length > 0 && node.Float("beta", 1f) != 1f))
                    throw new ModelFormatException($"{Path}: {node} has transA {node.Int("transA", 0)}, alpha {node.Float("alpha", 1f)}, beta {node.Float("beta", 1f)}; a linear layer has transA 0, alpha 1, beta 1");
                weight = Resolve(node.Input(1)) ?? throw new ModelFormatException($"{Path}: {node} multiplies by '{node.Input(1)}', which is not a constant weight");
                transposed = node.Int("transB", 0) == 0;
                output = node.Outputs[0];
                if (node.Input(2).Length > 0)
                    gemmBias = _constants.ContainsKey(node.Input(2)) ? node.Input(2)
                        : throw new ModelFormatException($"{Path}: {node} adds '{node.Input(2)}', which is not a constant bias");
                break;
            case "MatMulInteger":
                (weight, output) = DynamicQuantizedMatMul(node);
                transposed = true;
                break;
            default:
                weight = Resolve(node.Input(1));
                if (weight is null) return; // activations × activations: attention scores and context
                transposed = true;
                output = node.Outputs[0];
                break;
        }
        transposed ^= weight.ViaTranspose;
        OnnxTensor stored = weight.Tensor;
        if (stored.Dims.Length != 2)
            throw new ModelFormatException($"{Path}: {node} multiplies by '{stored.Name}' {stored.ShapeText}; a linear layer's weight is a matrix");

        List<OnnxNode> biasAdds = Consumers(output).Where(c => c.OpType == "Add" && c.Inputs.Any(IsBias)).ToList();
        if (gemmBias is null && biasAdds.Count > 1)
            throw new ModelFormatException($"{Path}: {node}: its output '{output}' feeds {biasAdds.Count} bias Adds ({string.Join(", ", biasAdds.Select(b => $"'{b.Name}'"))}); expected one");
        string? biasName = gemmBias ?? biasAdds.SelectMany(b => b.Inputs).FirstOrDefault(IsBias);

        var candidates = new List<(string Name, string From)>();
        if (biasName is not null && biasName.EndsWith(".bias", StringComparison.Ordinal))
            candidates.Add((biasName[..^".bias".Length] + ".weight", $"bias '{biasName}'"));
        if (ModulePath(node.Name) is { } module) candidates.Add((module + ".weight", "its node path"));
        string ownName = stored.Name.EndsWith("_quantized", StringComparison.Ordinal) ? stored.Name[..^"_quantized".Length] : stored.Name;
        if (ownName.EndsWith(".weight", StringComparison.Ordinal)) candidates.Add((ownName, "its initializer's name"));
        if (candidates.Count == 0)
            throw new ModelFormatException($"{Path}: {node} multiplies by the constant '{stored.Name}' {stored.ShapeText}, but nothing names it: no Add of a '*.bias' tensor consumes its output and its node name is not a module path");
        if (candidates.Select(c => c.Name).Distinct().Count() > 1)
            throw new ModelFormatException($"{Path}: {node}: its weight '{stored.Name}' gets different names: {string.Join(", ", candidates.Select(c => $"'{c.Name}' from {c.From}"))}");

        long outputs = transposed ? stored.Dims[1] : stored.Dims[0];
        if (biasName is not null && _constants[biasName].ElementCount != outputs)
            throw new ModelFormatException($"{Path}: {node}: weight '{stored.Name}' {stored.ShapeText} has {outputs} outputs, but bias '{biasName}' {_constants[biasName].ShapeText} has {_constants[biasName].ElementCount} values");
        if (!_claimed.Add(stored))
            throw new ModelFormatException($"{Path}: {node}: weight '{stored.Name}' is also used by another linear layer");
        string name = candidates[0].Name;
        Add(new MappedTensor(name, stored, transposed, weight.Dequantization, $"initializer '{stored.Name}' of {node}"));
        _linearOutputs[name] = (gemmBias is null && biasAdds.Count == 1 ? biasAdds[0].Outputs[0] : output, node);
        // The bias belongs to the same layer (even a one-element one, as the classifier's, which would pass for a constant).
        if (biasName is not null && _claimed.Add(_constants[biasName]))
            Add(new MappedTensor(name[..^".weight".Length] + ".bias", _constants[biasName], false, null, $"initializer '{biasName}' of {node}"));
    }

    /// <summary>
    /// onnxruntime's dynamic quantization of <c>X · W</c> (quantize_dynamic): <c>(Xq, Xs, Xzp) = DynamicQuantizeLinear(X)</c>,
    /// <c>MatMulInteger(Xq, Wq, Xzp, Wzp)</c>, <c>Cast</c> to float, <c>Mul</c> by <c>Mul(Xs, Ws)</c>. Returns the weight
    /// (dequantized per tensor or per column) and the value that stands for <c>X · W</c>.
    /// </summary>
    private (ConstantOperand Weight, string Output) DynamicQuantizedMatMul(OnnxNode node)
    {
        ModelFormatException NotThePattern(string what) => new(
            $"{Path}: {node} is not in the pattern of onnxruntime's dynamic quantization (DynamicQuantizeLinear → MatMulInteger → Cast → Mul by the product of both scales): {what}");
        OnnxNode? quantize = _producers.GetValueOrDefault(node.Input(0));
        if (quantize is not { OpType: "DynamicQuantizeLinear", Outputs.Count: 3 } || node.Input(2) != quantize.Outputs[2])
            throw NotThePattern("its first input and zero point are not the outputs of one DynamicQuantizeLinear");
        OnnxTensor stored = _constants.GetValueOrDefault(node.Input(1)) ?? throw NotThePattern($"its weight '{node.Input(1)}' is not a constant");
        if (stored.Dims.Length != 2) throw NotThePattern($"its weight '{stored.Name}' {stored.ShapeText} is not a matrix");
        List<OnnxNode> next = Consumers(node.Outputs[0]);
        if (next is not [{ OpType: "Cast" } cast] || cast.Int("to", 0) != (long)OnnxDataType.Float)
            throw NotThePattern("its output does not go through one Cast to float");
        if (Consumers(cast.Outputs[0]) is not [{ OpType: "Mul" } rescale])
            throw NotThePattern("the Cast does not feed one Mul");
        string product = rescale.Inputs.FirstOrDefault(i => i != cast.Outputs[0]) ?? "";
        OnnxNode? scales = _producers.GetValueOrDefault(product);
        string? weightScale = scales is { OpType: "Mul" } && scales.Inputs.Contains(quantize.Outputs[1])
            ? scales.Inputs.FirstOrDefault(i => i != quantize.Outputs[1] && _constants.ContainsKey(i)) : null;
        if (weightScale is null) throw NotThePattern($"'{product}' is not the product of the input's scale and a constant weight scale");
        // MatMulInteger's zero point is per tensor or per column of the [in, out] weight; so is the scale multiplying its columns.
        return (new ConstantOperand(stored, false, Quantization(node, stored, weightScale, node.Input(3), axis: 1)), rescale.Outputs[0]);
    }

    /// <summary>An embedding table quantized by quantize_dynamic: <c>Gather(Wq, ids)</c> then <c>DequantizeLinear</c> with one scale.</summary>
    private void MapQuantizedGather(OnnxNode node)
    {
        if (!_constants.TryGetValue(node.Input(0), out OnnxTensor? stored) || stored.DataType is not (OnnxDataType.Int8 or OnnxDataType.UInt8))
            return;
        if (Consumers(node.Outputs[0]) is not [{ OpType: "DequantizeLinear" } dequantize] || dequantize.Input(0) != node.Outputs[0])
            throw new ModelFormatException($"{Path}: {node} gathers from the quantized '{stored.Name}' but its output does not go to one DequantizeLinear");
        Dequantization q = Quantization(dequantize, stored, dequantize.Input(1), dequantize.Input(2), axis: -1);
        if (q.Axis != -1)
            throw new ModelFormatException($"{Path}: {dequantize} dequantizes gathered rows of '{stored.Name}' per axis; expected one scale for the table");
        string name = stored.Name.EndsWith("_quantized", StringComparison.Ordinal) ? stored.Name[..^"_quantized".Length] : stored.Name;
        string? module = ModulePath(node.Name, "Gather");
        if (!name.EndsWith(".weight", StringComparison.Ordinal) || module is not null && module + ".weight" != name)
            throw new ModelFormatException($"{Path}: {node}: cannot name the quantized table '{stored.Name}' (its node path says '{module}')");
        _claimed.Add(stored);
        Add(new MappedTensor(name, stored, false, q, $"initializer '{stored.Name}' of {node}"));
    }

    /// <summary>
    /// The module path in an exporter's node name, e.g. <c>/encoder/layer.0/attention/self/query/MatMul</c> →
    /// <c>encoder.layer.0.attention.self.query</c> (torch ≥ 1.13 names nodes so; quantization appends <c>_quant</c>).
    /// </summary>
    private static string? ModulePath(string nodeName, string op = "")
    {
        string[] parts = nodeName.Split('/');
        if (parts.Length < 3 || parts[0].Length != 0 || parts[1..^1].Any(p => p.Length == 0)) return null;
        string last = parts[^1];
        if (last.EndsWith("_quant", StringComparison.Ordinal)) last = last[..^"_quant".Length];
        string baseName = last.Split('_')[0];
        bool isLinear = op.Length == 0 ? baseName is "MatMul" or "Gemm" : baseName == op;
        if (!isLinear || last.Length > baseName.Length && !int.TryParse(last.AsSpan(baseName.Length + 1), out _)) return null;
        return string.Join('.', parts[1..^1]);
    }

    private bool IsBias(string value) => value.EndsWith(".bias", StringComparison.Ordinal) && _constants.ContainsKey(value);

    private List<OnnxNode> Consumers(string value) => _consumers.GetValueOrDefault(value) ?? [];

    private void Add(MappedTensor tensor)
    {
        if (_tensors.TryGetValue(tensor.Name, out MappedTensor? other))
            throw new ModelFormatException($"{Path}: two candidates for '{tensor.Name}': {other.Origin} and {tensor.Origin}");
        _tensors[tensor.Name] = tensor;
    }

    /// <summary>
    /// Float tensors used in place (embeddings, biases, LayerNorm) keep their names; scalars are constants, not
    /// weights. A quantized tensor outside the patterns above would be a weight Funnel cannot read.
    /// </summary>
    private void MapNamedConstants()
    {
        foreach (var (name, t) in _constants)
        {
            if (_claimed.Contains(t) || t.ElementCount <= 1) continue;
            if (t.IsFloatingPoint) Add(new MappedTensor(name, t, false, null, $"initializer '{name}'"));
            else if (t.DataType is OnnxDataType.Int8 or OnnxDataType.UInt8)
                throw new ModelFormatException($"{Path}: quantized tensor '{name}' {t.DataType} {t.ShapeText} is not used as dynamic quantization's MatMulInteger or Gather + DequantizeLinear use it");
        }
    }

    // ------------------------------------------------------------ checks

    private IReadOnlyDictionary<string, MappedTensor> CheckCoverage()
    {
        var expected = BertTensors.Specs(_config, _config.Architecture == BertArchitecture.BertForSequenceClassification)
            .ToDictionary(s => BertTensors.Unprefixed(s.Name), s => s.Shape, StringComparer.Ordinal);
        var byName = new Dictionary<string, MappedTensor>(StringComparer.Ordinal);
        foreach (MappedTensor t in _tensors.Values)
        {
            string name = BertTensors.Unprefixed(t.Name);
            if (byName.TryGetValue(name, out MappedTensor? other))
                throw new ModelFormatException($"{Path}: two candidates for '{name}': {other.Origin} and {t.Origin}");
            byName[name] = t;
        }
        string[] missing = [.. expected.Keys.Where(n => BertTensors.IsEncoder(n) && !byName.ContainsKey(n))];
        if (missing.Length > 0)
        {
            string found = byName.Count == 0 ? "none" : string.Join(", ", byName.Keys.Order(StringComparer.Ordinal).Take(6).Select(n => $"'{n}'")) + (byName.Count > 6 ? ", …" : "");
            throw new ModelFormatException(
                $"{Path}: not the BERT graph config.json describes: no tensor for {string.Join(", ", missing.Take(4).Select(n => $"'{n}'"))}{(missing.Length > 4 ? ", …" : "")} "
                + $"({missing.Length} of the encoder's {expected.Keys.Count(BertTensors.IsEncoder)} tensors missing; the graph's weights are {found})");
        }
        foreach (var (name, t) in byName)
        {
            if (!expected.TryGetValue(name, out int[]? shape))
                throw new ModelFormatException(
                    $"{Path}: {t.Origin} ('{t.Name}' {t.ShapeText}) is not a weight of the {_config.Architecture} config.json describes ({_config.Layers} layers, hidden size {_config.HiddenSize}); does config.json belong to this model?");
            if (!t.Shape.SequenceEqual(shape.Select(d => (long)d)))
                throw new ModelFormatException($"{Path}: tensor '{t.Name}' ({t.Origin}) has shape {t.ShapeText}, expected [{string.Join(", ", shape)}] (config.json)");
        }
        return byName;
    }

    private void CheckOperators()
    {
        if (_model.Graph.Nodes.FirstOrDefault(n => !Operators.Contains(n.OpType)) is { } node)
            throw new ModelFormatException($"{Path}: {node}: operator {node.OpType} does not occur in Hugging Face BERT exports, so this graph computes something else than the BERT of config.json");
    }

    /// <summary>
    /// The attention heads: each query, key and value projection is reshaped to [batch, sequence, heads, head size],
    /// which must be config.json's; the weights alone cannot tell 12 heads of 32 from 6 of 64.
    /// </summary>
    private void CheckHeads()
    {
        (long, long) expected = (_config.Heads, _config.HeadDim);
        foreach (var (name, (value, node)) in _linearOutputs)
        {
            if (!IsHeadProjection(BertTensors.Unprefixed(name))) continue;
            List<OnnxNode> reshapes = Consumers(value).Where(c => c.OpType == "Reshape" && c.Input(0) == value).ToList();
            if (reshapes.Count == 0)
                throw new ModelFormatException($"{Path}: {node} ('{name}'): its output is not reshaped into attention heads; expected [batch, sequence, {_config.Heads}, {_config.HeadDim}]");
            foreach (OnnxNode reshape in reshapes)
            {
                (long Heads, long Size)? split = HeadSplit(reshape.Input(1));
                if (split is null)
                    throw new ModelFormatException($"{Path}: {reshape}: cannot tell how it splits '{name}' into heads (its shape is neither a constant nor a Concat ending in two constant sizes)");
                if (split != expected)
                    throw new ModelFormatException($"{Path}: {reshape} splits '{name}' into {split.Value.Heads} heads of {split.Value.Size}; config.json says num_attention_heads {_config.Heads} (head size {_config.HeadDim})");
            }
        }
    }

    private static bool IsHeadProjection(string name) =>
        name.StartsWith("encoder.layer.", StringComparison.Ordinal)
        && (name.EndsWith(".attention.self.query.weight", StringComparison.Ordinal) || name.EndsWith(".attention.self.key.weight", StringComparison.Ordinal)
            || name.EndsWith(".attention.self.value.weight", StringComparison.Ordinal));

    /// <summary>The last two entries of a Reshape's target shape: a constant, or a Concat whose last two inputs are constant.</summary>
    private (long, long)? HeadSplit(string shape)
    {
        if (_constants.TryGetValue(shape, out OnnxTensor? whole))
        {
            long[] dims = _model.ReadInt64(whole);
            return dims.Length == 4 ? (dims[2], dims[3]) : null;
        }
        if (_producers.GetValueOrDefault(shape) is not { OpType: "Concat", Inputs.Count: 4 } concat) return null;
        return SingleInteger(concat.Inputs[2]) is long heads && SingleInteger(concat.Inputs[3]) is long size ? (heads, size) : null;
    }

    /// <summary>A one-element INT64 constant, also behind Unsqueeze, Cast or Identity (as exports without constant folding write it).</summary>
    private long? SingleInteger(string value)
    {
        if (_constants.TryGetValue(value, out OnnxTensor? t)) return _model.ReadInt64(t) is [long v] ? v : null;
        return _producers.GetValueOrDefault(value) is { OpType: "Unsqueeze" or "Cast" or "Identity" } p ? SingleInteger(p.Input(0)) : null;
    }

    /// <summary>Counts that pin the computation to BERT's: per layer one exact GELU and one attention softmax, and 2·layers + 1 LayerNorms.</summary>
    private void CheckStructure()
    {
        int Count(string op) => _model.Graph.Nodes.Count(n => n.OpType == op);
        int layers = _config.Layers, erf = Count("Erf"), tanh = Count("Tanh");
        if (erf != layers || tanh > 1)
        {
            string hint = tanh > 1 ? $"; its {tanh} Tanh nodes suggest the tanh approximation of GELU" : "";
            throw new ModelFormatException(
                $"{Path}: expected {layers} Erf nodes (the exact GELU of each layer, as config.json's hidden_act \"gelu\" says) and at most one Tanh (the pooler), found {erf} Erf and {tanh} Tanh{hint}");
        }
        if (Count("Softmax") != layers)
            throw new ModelFormatException($"{Path}: expected {layers} Softmax nodes (one attention per layer), found {Count("Softmax")}");
        int reduceMeans = Count("ReduceMean"), norms = Count("LayerNormalization") + reduceMeans / 2;
        if (norms != 2 * layers + 1 || reduceMeans % 2 != 0)
            throw new ModelFormatException(
                $"{Path}: expected {2 * layers + 1} LayerNorms (embeddings and two per layer), found {Count("LayerNormalization")} LayerNormalization nodes and {reduceMeans} ReduceMean nodes (two per decomposed LayerNorm)");
    }
}
