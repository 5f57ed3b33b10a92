// Behavioural model of the ECP5 DP16KD block RAM, for simulating designs that instantiate it
// (yosys's cells_sim_ecp5.v declares it as a black box). Written from Lattice TN1264, "ECP5
// and ECP5-5G Memory Usage Guide": true dual port, both ports of the same DATA_WIDTH (1, 2, 4,
// 9 or 18; the address is ADx13 down to the pin log2 of the mode, at 18 bits ADx1..0 are the
// byte enables of a write), CEx loads the read latch, OCEx the output register when REGMODE_x
// is OUTREG, WRITEMODE NORMAL (a port's output holds while it writes). Chip selects must decode
// to 0 (CSDECODE "0b000"); resets, GSR and initial values are not modelled (the output
// registers start at 0, the array too, as INITVAL's default). A read of the word the other port writes in the same cycle gives x.
`timescale 1ns / 1ps
module DP16KD (
  input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
  input ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
  input CEA, OCEA, CLKA, WEA, RSTA,
  input CSA2, CSA1, CSA0,
  output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
  input DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
  input ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
  input CEB, OCEB, CLKB, WEB, RSTB,
  input CSB2, CSB1, CSB0,
  output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
  parameter DATA_WIDTH_A = 18;
  parameter DATA_WIDTH_B = 18;
  parameter REGMODE_A = "NOREG";
  parameter REGMODE_B = "NOREG";
  parameter RESETMODE = "SYNC";
  parameter ASYNC_RESET_RELEASE = "SYNC";
  parameter CSDECODE_A = "0b000";
  parameter CSDECODE_B = "0b000";
  parameter WRITEMODE_A = "NORMAL";
  parameter WRITEMODE_B = "NORMAL";
  parameter GSR = "ENABLED";

  localparam W = DATA_WIDTH_A;
  localparam LOW = W == 18 ? 4 : W == 9 ? 3 : W == 4 ? 2 : W == 2 ? 1 : 0;

  initial begin
    if (DATA_WIDTH_A != DATA_WIDTH_B)
      $fatal(1, "DP16KD model: both ports must have the same DATA_WIDTH");
    if (!(W == 1 || W == 2 || W == 4 || W == 9 || W == 18))
      $fatal(1, "DP16KD model: DATA_WIDTH %0d is not 1, 2, 4, 9 or 18", W);
    if (WRITEMODE_A != "NORMAL" || WRITEMODE_B != "NORMAL")
      $fatal(1, "DP16KD model: only WRITEMODE NORMAL is modelled");
  end

  wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
  wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
  wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
  wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
  wire [13:0] wa = ada >> LOW;
  wire [13:0] wb = adb >> LOW;
  wire [17:0] mask = (18'h1 << W) - 1;
  wire csa = {CSA2, CSA1, CSA0} == 3'b000;
  wire csb = {CSB2, CSB1, CSB0} == 3'b000;
  // byte enables at width 18: ADx0 the low 9 bits, ADx1 the high 9
  wire [17:0] bea = W == 18 ? {{9{ADA1}}, {9{ADA0}}} : mask;
  wire [17:0] beb = W == 18 ? {{9{ADB1}}, {9{ADB0}}} : mask;

  reg [17:0] mem [0:16383];
  reg [17:0] latch_a = 0, latch_b = 0, oreg_a = 0, oreg_b = 0;
  integer i;
  initial for (i = 0; i < 16384; i = i + 1) mem[i] = 0;

  always @(posedge CLKA) begin
    if (CEA && csa) begin
      if (WEA)
        mem[wa] <= (mem[wa] & ~bea) | (dia & bea & mask);
      else
        latch_a <= (CEB && csb && WEB && wb == wa) ? 18'bx : mem[wa] & mask;
    end
    if (OCEA) oreg_a <= latch_a;
  end

  always @(posedge CLKB) begin
    if (CEB && csb) begin
      if (WEB)
        mem[wb] <= (mem[wb] & ~beb) | (dib & beb & mask);
      else
        latch_b <= (CEA && csa && WEA && wa == wb) ? 18'bx : mem[wb] & mask;
    end
    if (OCEB) oreg_b <= latch_b;
  end

  wire [17:0] doa = REGMODE_A == "OUTREG" ? oreg_a : latch_a;
  wire [17:0] dob = REGMODE_B == "OUTREG" ? oreg_b : latch_b;
  assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = doa;
  assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = dob;
endmodule
