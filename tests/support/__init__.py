"""What the tests share and are not tests themselves: helpers (``helpers``), float64 references
(``reference_conv``, ``gradients``, ``torch7``, ``original_stabilizer``) and the scripts some tests run in
a process of their own (``*_worker``)."""
