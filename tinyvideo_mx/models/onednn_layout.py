"""Getting a tensor out of oneDNN's blocked layout in a hybridized MXNet 1.9.1 graph.

A float32 convolution writes its output in oneDNN's blocked layout. Operators that read memory as plain
(a transpose of the view a reshape makes, a CustomOp) either fail ("could not create a primitive
descriptor for a reorder primitive") or are handed a temporary plain copy (layers.py, data_gradient.py).
``* 1``, identity and Cast keep the blocked layout (they have oneDNN kernels); ``clip`` has none, so its
copy is plain - with bounds never reached, values and gradients pass unchanged. Under AMP the cast of a
bfloat16 convolution's output to float32 writes plain layout itself.
"""
PLAIN_COPY_BOUND = 3.0e38      # float32's largest is 3.4e38


def amp_casts_convolution_outputs():
    """True once AMP is on: every Convolution then writes the low-precision type, and AMP casts it back to
    float32 before any Reshape (its lists keep Reshape in float32) - a cast that writes plain layout."""
    from mxnet.contrib.amp import amp
    return amp._amp_initialized


def plain_copy(F, x):
    """``x`` copied into plain layout (float32; unchanged values and gradient)."""
    return F.clip(x, -PLAIN_COPY_BOUND, PLAIN_COPY_BOUND)


def plain_float32(F, convolution_output):
    """A convolution's output as float32 in plain layout: the cast under AMP, else a plain copy."""
    if amp_casts_convolution_outputs():
        return F.amp_cast(convolution_output, dtype="float32")
    return plain_copy(F, convolution_output)
