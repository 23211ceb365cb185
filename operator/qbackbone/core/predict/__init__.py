"""predict: traffic forecasts with intervals; seasonal-naive, Holt-Winters, a quantum reservoir."""
