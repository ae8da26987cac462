#version 450
// One AdamW step (torch.optim.AdamW, the order of engine/params/adamw.h)
// (C twin: lgpu_ref_adamw). One invocation per parameter:
//   g = grad * grad_scale;  p *= 1 - lr * weight_decay
//   m = beta1 * m + one_minus_beta1 * g;  v = beta2 * v + one_minus_beta2 * g * g
//   p -= lr * c1 * m / (sqrt(v) * c2 + eps)
#include "common.glsl"

layout(binding = 0) buffer P { float param[]; };
layout(binding = 1) readonly buffer G { float grad[]; };
layout(binding = 2) buffer M { float mom[]; };
layout(binding = 3) buffer V { float vel[]; };
layout(push_constant) uniform Params {
    uint n;
    float lr, beta1, beta2, eps, weight_decay;
    float c1, c2;
    float grad_scale;
    float one_minus_beta1, one_minus_beta2;
} p;

void main() {
    uint i = global_index();
    if (i >= p.n) return;
    float g = grad[i] * p.grad_scale;
    float w = param[i] * (1.0 - p.lr * p.weight_decay);
    float m = p.beta1 * mom[i] + p.one_minus_beta1 * g;
    float v = p.beta2 * vel[i] + p.one_minus_beta2 * g * g;
    w -= p.lr * p.c1 * m / (sqrt(v) * p.c2 + p.eps);
    param[i] = w;
    mom[i] = m;
    vel[i] = v;
}
