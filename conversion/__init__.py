"""Conversion: trained networks to TFLite (int8 / fp16 / fp32), metadata, verification, imports."""
